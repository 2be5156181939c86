#!/usr/bin/python3
"""mailfs benchmark (DESIGN section 8): mailfs side by side with mbsync, a raw
pipelined IMAP fetch and the local write floor, in one run, on one corpus.

    /usr/bin/python3 tests/bench/bench.py [--scale 1] [--runs 3] [--mailfs BIN]
        [--only raw,floor,mbsync,mailfs,headers,resync,mount] [--out FILE.md]
        [--json FILE] [--dest-fs auto|loop|tmpdir] [--wait-idle SECONDS]
        [--read-reps 3] [--deliveries 10] [--dav [--dav-server radicale]] [--keep]

Measured: the initial sync (mbsync, mailfs in full and in headers mode), the
no-change resync, the resync after a change set made on the server (100 new
messages, 500 flag changes), reads through a mailfs mount against the same
reads on mbsync's Maildir (`ls -l`, `find | wc -l`, `cat`, `grep -r`), the
delay from delivery to visibility in the mount, peak RSS; with --dav also
tests/bench/dav_bench.py (CalDAV/CardDAV against vdirsyncer), folded in.

Run as root on Debian 12 (it apt-get installs what it compares against). It
starts Dovecot on a free loopback port in a temporary directory, loads the
corpus (tests/bench/corpus.py) once, warms Dovecot with one full FETCH, then
measures every contender --runs times, interleaved (run 1 of each, then run 2
of each, ...), each on a fresh destination, and reports the medians and the
ratios beside the DESIGN section 8 targets. Everything it starts and every
temporary directory is removed on exit, also on Ctrl-C or SIGTERM.

Caches: the server side stays warm for every contender (Dovecot's indexes
and the corpus in the page cache), because dropping caches cannot be done
for the server alone and a cold server would measure the disk rather than
the client. The client side always writes a fresh destination; before each
measurement sync(2) flushes any dirty data so that one contender's writeback
never lands in another's time. Destinations live on a journaled ext4 (a loop
image when the temporary directory is on ext4 without a journal: see DestFs).
See tests/bench/README.md.
"""

import argparse
import datetime
import imaplib
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "servers"))

import corpus  # noqa: E402

# What the benchmark needs from Debian and compares against.
APT_LINE = ["apt-get", "install", "-y", "--no-install-recommends",
            "isync", "dovecot-imapd", "time", "e2fsprogs"]
NEEDED_BINARIES = {"/usr/bin/mbsync": "isync", "/usr/sbin/dovecot": "dovecot-imapd",
                   "/usr/lib/dovecot/imap": "dovecot-imapd", "/usr/bin/time": "time",
                   "/usr/sbin/mkfs.ext4": "e2fsprogs"}
GNU_TIME = "/usr/bin/time"
USER, PASSWORD = "bench", "bench-secret"
ACCOUNT = "bench"


def setup(log):
    """Install what is compared against when missing (a fresh Debian 12, as root)."""
    missing = sorted({pkg for path, pkg in NEEDED_BINARIES.items() if not os.path.exists(path)})
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"bench: missing {' '.join(missing)}; run as root or: {' '.join(APT_LINE)}")
    log(f"setup: installing {' '.join(missing)}: {' '.join(APT_LINE)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(APT_LINE, check=True, env=env)


# --- child processes ---------------------------------------------------------

def _on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


_children = set()


def run_measured(argv, log_path, env=None, timeout=3600, rusage=False):
    """Run argv to completion; returns (wall seconds, exit code, peak RSS KiB, CPU s).

    With rusage, argv runs under GNU time, whose %M is the child's peak RSS.
    (The rusage that wait4() gives Python itself is no good: a child forked
    from this process starts with its RSS, about 1 GB after the corpus, and
    ru_maxrss keeps that.) GNU time adds about 1 ms, so runs that need no
    memory figure go without it; then RSS and CPU are None. The child runs
    in its own session so that an interrupt kills it and everything it
    started (by its process group id)."""
    tfile = log_path + ".time"
    if rusage:
        argv = [GNU_TIME, "-f", "%M %U %S", "-o", tfile, "--"] + list(argv)
    with open(log_path, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=env, start_new_session=True)
        _children.add(p)
        expired = []

        def expire():
            expired.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            p.wait()
            wall = time.perf_counter() - t0
        finally:
            timer.cancel()
            if p.returncode is None:
                _kill(p)
            _children.discard(p)
    if expired:
        raise TimeoutError(f"{argv[0]} killed after {timeout} s")
    rss = cpu = None
    if rusage and p.returncode == 0:
        with open(tfile) as f:
            last = f.read().split("\n")[-2].split()
        rss, cpu = int(last[0]), float(last[1]) + float(last[2])
    return wall, p.returncode, rss, cpu


def _kill(p):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(5)
            return
        except subprocess.TimeoutExpired:
            pass


def failure(what, rc, log):
    """An error whose first line says why (the log's last line), then the log's tail."""
    text = tail(log).rstrip()
    last = text.splitlines()[-1] if text else ""
    return RuntimeError(f"{what} exited {rc}: {last}\n{text}")


def tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def maildir_census(root):
    """{"messages": n, "S": seen, "F": flagged, "R": answered} of a Maildir tree."""
    out = {"messages": 0, "S": 0, "F": 0, "R": 0}
    for d, dirs, files in os.walk(root):
        if os.path.basename(d) not in ("cur", "new"):
            continue
        out["messages"] += len(files)
        for name in files:
            i = name.rfind(":2,")
            if i >= 0:
                for c in "SFR":
                    out[c] += c in name[i + 3:]
    return out


def corpus_census(stats):
    out = {"messages": stats.messages}
    for c in "SFR":
        out[c] = sum(f[c] for f in stats.folders.values())
    return out


def settle():
    """Wait until the clock is in a later second than the last write.

    Before a no-change resync: mbsync's Maildir scan sleeps 1 s when cur/ or new/
    was modified in the current second (isync drv_maildir.c, "sleeping due to
    recent directory modification"), so a resync straight after the initial sync
    would time that sleep. A real resync comes later; every contender gets the
    same pause."""
    now = time.time()
    time.sleep(int(now) + 1.02 - now)


def timed_sync():
    """sync(2), timed: what it takes for the last run's data to be on disk."""
    t0 = time.perf_counter()
    os.sync()
    return time.perf_counter() - t0


def fresh_dir(path):
    """Remove path (a previous destination), flush all dirty data, make it anew."""
    if os.path.exists(path):
        shutil.rmtree(path)
    os.sync()
    os.makedirs(path)
    return path


def drop_dir(path):
    """Remove a destination once measured, so that the destination file system
    holds one copy of the corpus at a time."""
    shutil.rmtree(path, ignore_errors=True)


# --- where destinations are written ----------------------------------------------

def _ext4_without_journal(path):
    """True when path is on an ext4 file system that has no journal."""
    src = _first_line(["findmnt", "-no", "SOURCE,FSTYPE", "-T", path]).split()
    if len(src) != 2 or src[1] != "ext4":
        return False
    try:
        with open(f"/sys/fs/ext4/{os.path.basename(src[0])}/journal_task") as f:
            return f.read().strip() == "<none>"
    except OSError:
        return False


class DestFs:
    """The file system every contender writes its destination to.

    On ext4 without a journal, creating a file skips every free inode of its
    block group that was deleted in the last 60 s (300 s while the inode table
    block is dirty): ext4 ialloc.c recently_deleted(), which guards inode reuse
    when there is no journal. After a previous destination (or anyone else's
    files) were deleted, each create then walks thousands of inodes: writing
    0.9 GB as 9,000 files took 3.5-4.7 s instead of 0.4 s, depending on what was
    deleted nearby in the last minutes: noise far above the differences being
    measured. So on such a file system (auto) the destinations go to a
    journaled ext4 in a loop-mounted image file (direct I/O, so no double
    caching) made here; elsewhere they go to the temporary directory."""

    def __init__(self, tmp, mode, size, log):
        self.tmp, self.log = tmp, log
        self.loop = self.mnt = self.image = None
        self.root = os.path.join(tmp, "dest")
        no_journal = _ext4_without_journal(tmp)
        if mode == "auto":
            mode = "loop" if no_journal else "tmpdir"
        if mode == "loop":
            self._make_loop(size)
        else:
            os.makedirs(self.root)
        here = " on ".join(_first_line(["findmnt", "-no", "FSTYPE,SOURCE", "-T",
                                        self.root if mode == "tmpdir" else tmp]).split())
        if mode == "loop":
            self.describe = (f"journaled ext4 in a {size / 2**30:.0f} GiB loop image (direct "
                             f"I/O) on {here}"
                             + (", which has no journal (tests/bench/README.md)"
                                if no_journal else ""))
        else:
            self.describe = f"{here} ({self.root})" + (
                " — ext4 without a journal: file creation after deletions is slow "
                "and noisy (tests/bench/README.md)" if no_journal else "")

    def _make_loop(self, size):
        if os.geteuid() != 0:
            raise RuntimeError("--dest-fs loop needs root (losetup, mount)")
        self.image = os.path.join(self.tmp, "dest.img")
        # Allocated up front and initialised by mkfs (no lazy inode-table init
        # in the background), so that the first run does not pay for the host
        # file's block allocation or compete with ext4lazyinit.
        fd = os.open(self.image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0",
                        "-E", "lazy_itable_init=0,lazy_journal_init=0", self.image],
                       check=True)
        self.loop = subprocess.run(["losetup", "--find", "--show", "--direct-io=on",
                                    self.image], check=True, capture_output=True,
                                   text=True).stdout.strip()
        os.makedirs(self.root)
        subprocess.run(["mount", "-t", "ext4", self.loop, self.root], check=True)
        self.mnt = self.root
        self.log(f"destinations: journaled ext4 on {self.loop} ({self.image}) at {self.root}")

    def close(self):
        if self.mnt:
            r = subprocess.run(["umount", self.mnt], capture_output=True, text=True)
            if r.returncode != 0:
                self.log(f"umount {self.mnt}: {r.stderr.strip()}; detaching lazily")
                subprocess.run(["umount", "-l", self.mnt])
            self.mnt = None
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop])
            self.loop = None
        if self.image:
            try:
                os.unlink(self.image)
            except OSError:
                pass
            self.image = None


# --- other load on the machine ----------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _processes():
    """{pid: (ppid, name, own CPU s, reaped children's CPU s)} of every process now."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out[int(d)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICK,
                       (int(fields[13]) + int(fields[14])) / _TICK)
    return out


def _descendants(procs, root):
    kids = {}
    for pid, info in procs.items():
        kids.setdefault(info[0], []).append(pid)
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(kids.get(p, []))
    return out


def _busy_seconds():
    """CPU seconds the whole machine has spent busy (not idle or iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = v[:7]
    return (user + nice + system + irq + softirq) / _TICK


class OtherLoad:
    """CPU used by other processes than this benchmark's own (another engineer's
    fuzzer or build): on a 2-CPU machine it skews every figure, so it is
    measured and reported. It is the machine's busy time (/proc/stat) minus the
    CPU of this process tree (reaped children included) and of kernel threads
    (writeback that our own writes cause); so short-lived processes (a compiler
    run) count too. Long-lived ones are named."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.busy0 = _busy_seconds()
        self.before = _processes()
        self.ours0 = self._ours(self.before)
        self.kernel0 = self._kernel(self.before)

    @staticmethod
    def _ours(procs):
        return sum(procs[p][2] + procs[p][3] for p in _descendants(procs, os.getpid())
                   if p in procs)

    @staticmethod
    def _kernel(procs):
        return {pid: v[2] for pid, v in procs.items() if pid == 2 or v[0] == 2}

    def result(self):
        """(average CPUs used by others, [(name, CPUs), ...] of long-lived ones)."""
        after = _processes()
        wall = max(time.monotonic() - self.t0, 1e-3)
        busy = _busy_seconds() - self.busy0
        ours = self._ours(after) - self.ours0
        k1 = self._kernel(after)
        kernel = sum(k1[p] - self.kernel0[p] for p in k1 if p in self.kernel0)
        others = max(0.0, busy - ours - kernel) / wall
        skip = _descendants(after, os.getpid()) | _descendants(self.before, os.getpid())
        per = {}
        for pid, (ppid, name, cpu, _) in after.items():
            if pid in skip or pid in k1 or pid not in self.before \
                    or self.before[pid][1] != name:
                continue
            d = cpu - self.before[pid][2]
            if d > 0:
                per[name] = per.get(name, 0) + d / wall
        top = sorted(per.items(), key=lambda kv: -kv[1])
        named = sum(per.values())
        if others - named > 0.02:
            top.append(("short-lived processes", others - named))
        return others, top


def other_load_now(seconds=1.0):
    probe = OtherLoad()
    time.sleep(seconds)
    return probe.result()


def describe_load(cpus, top):
    names = ", ".join(f"{n} {c:.1f}" for n, c in top[:4] if c >= 0.01)
    return f"{cpus:.2f} CPUs" + (f" ({names})" if names else "")


# --- the raw fetch: the network and server floor -----------------------------

_LITERAL = re.compile(rb"\{(\d+)\}$")


class _Reader:
    """Reads IMAP responses, skipping literals without keeping them."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.chunk = bytearray(1 << 20)
        self.view = memoryview(self.chunk)
        self.bodies = 0
        self.body_bytes = 0

    def _fill(self):
        n = self.sock.recv_into(self.view)
        if not n:
            raise ConnectionError("server closed the connection")
        self.buf += self.view[:n]

    def _skip(self, n):
        take = min(n, len(self.buf))
        del self.buf[:take]
        n -= take
        while n:
            k = self.sock.recv_into(self.view, min(n, len(self.chunk)))
            if not k:
                raise ConnectionError("server closed the connection in a literal")
            n -= k

    def response(self):
        """One response, literals skipped: the text around them."""
        parts = []
        while True:
            while True:
                i = self.buf.find(b"\r\n")
                if i >= 0:
                    break
                self._fill()
            line = bytes(self.buf[:i])
            del self.buf[:i + 2]
            parts.append(line)
            m = _LITERAL.search(line)
            if not m:
                return b"".join(parts)
            n = int(m.group(1))
            if b"BODY[]" in line:
                self.bodies += 1
                self.body_bytes += n
            self._skip(n)

    def until(self, tag):
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                if not r.startswith(tag + b" OK"):
                    raise RuntimeError(f"raw fetch: {r.decode(errors='replace')}")
                return r


def raw_fetch(host, port, user, password, folders):
    """Log in, then pipeline SELECT + `UID FETCH 1:* BODY.PEEK[]` for every folder
    and read everything, discarding it. Returns (seconds, messages, bytes,
    client CPU seconds)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    with socket.create_connection((host, port)) as sock:
        r = _Reader(sock)
        greeting = r.response()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"raw fetch: greeting {greeting!r}")
        sock.sendall(b"a LOGIN " + _q(user) + b" " + _q(password) + b"\r\n")
        r.until(b"a")
        cmds = []
        for i, f in enumerate(folders):
            cmds.append(b"s%d SELECT %s\r\n" % (i, _q(f)))
            cmds.append(b"f%d UID FETCH 1:* BODY.PEEK[]\r\n" % i)
        sock.sendall(b"".join(cmds))
        for i in range(len(folders)):
            r.until(b"s%d" % i)
            r.until(b"f%d" % i)
        sock.sendall(b"z LOGOUT\r\n")
        r.until(b"z")
    return time.perf_counter() - t0, r.bodies, r.body_bytes, time.process_time() - c0


def _q(s):
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# --- the bench -------------------------------------------------------------------

class Metric:
    def __init__(self, key, label, unit, fmt="{:.3f}"):
        self.key, self.label, self.unit, self.fmt = key, label, unit, fmt


# Rows of the results table, in order. Contenders add values under these keys
# (the part before the first dot is the contender's name). Labels may name
# {messages} (the corpus), {new} and {flags} (the change set), {deliveries}
# and {reps} (see MountReads): report() fills them in.
METRICS = [
    Metric("raw.time", "raw pipelined `UID FETCH 1:* BODY.PEEK[]`, all folders", "s"),
    Metric("raw.mbps", "raw fetch throughput", "MB/s", "{:.0f}"),
    Metric("raw.cpu", "raw fetch: client CPU (Python)", "s"),
    Metric("floor.write", "write floor: one file per message, no sync", "s"),
    Metric("floor.sync", "write floor: the same + final sync", "s"),
    Metric("mbsync.initial", "mbsync initial sync (`mbsync -a`, fresh Maildir)", "s"),
    Metric("mbsync.durable", "mbsync initial + sync(2) after it (data on disk)", "s"),
    Metric("mbsync.nochange", "mbsync no-change resync", "s"),
    Metric("mbsync.cpu", "mbsync initial: CPU user+sys", "s", "{:.2f}"),
    Metric("mbsync.rss", "mbsync initial: peak RSS", "MiB", "{:.1f}"),
    Metric("mailfs.initial", "mailfs initial sync (`mailfs sync`, fresh store)", "s"),
    Metric("mailfs.durable", "mailfs initial + sync(2) after it (data on disk)", "s"),
    Metric("mailfs.nochange", "mailfs no-change resync", "s"),
    Metric("mailfs.cpu", "mailfs initial: CPU user+sys", "s", "{:.2f}"),
    Metric("mailfs.rss", "mailfs initial: peak RSS", "MiB", "{:.1f}"),
    Metric("mailfs.bytes", "mailfs initial: bytes received", "MB", "{:.1f}"),
    Metric("headers.initial", "mailfs initial sync, headers mode (`sync_mode = headers`, "
           "every folder, fresh store)", "s"),
    Metric("headers.bytes", "mailfs headers mode: bytes received", "MB", "{:.1f}"),
    Metric("headers.rss", "mailfs headers mode: peak RSS", "MiB", "{:.1f}"),
    Metric("resync.mbsync", "mbsync resync after {new} new messages + {flags} flag changes "
           "on the server", "s"),
    Metric("resync.mailfs", "mailfs resync after the same changes (`mailfs sync`)", "s"),
    Metric("resync.mailfs_bytes", "mailfs resync after changes: bytes received", "MB",
           "{:.1f}"),
    Metric("mount.start", "mailfs mount on the synced store: until Inbox lists", "s"),
    Metric("mount.ls_native", "`ls -l` of the largest folder: mbsync's Maildir (cur + new)",
           "s", "{:.4f}"),
    Metric("mount.ls", "`ls -l` of the largest folder: through the mount", "s", "{:.4f}"),
    Metric("mount.find_native", "`find \\| wc -l`: mbsync's Maildir", "s", "{:.4f}"),
    Metric("mount.find", "`find \\| wc -l`: through the mount", "s", "{:.4f}"),
    Metric("mount.cat_native", "`cat` of every file: mbsync's Maildir", "s"),
    Metric("mount.cat", "`cat` of every file: through the mount", "s"),
    Metric("mount.grep_native", "`grep -r` of an absent string: mbsync's Maildir", "s"),
    Metric("mount.grep", "`grep -r` of an absent string: through the mount", "s"),
    Metric("mount.latency", "delivery (APPEND to INBOX) until visible in the mount: "
           "median of {deliveries}", "s"),
    Metric("mount.latency_max", "delivery until visible: slowest of {deliveries}", "s"),
    Metric("mount.idle", "the same deliveries seen by an IMAP client in IDLE on INBOX "
           "(`* n EXISTS`): median — the server's part", "s"),
    Metric("mount.rss", "mailfs mount: peak RSS (after the reads and deliveries)", "MiB",
           "{:.1f}"),
]

# (label, numerator, denominator or None (then the value is shown with the
# numerator's unit), target text, check(value) or None, note). A note starting
# with "scale>=N" means the target is judged only at --scale N and above.
RATIOS = [
    ("mailfs initial / mbsync initial", "mailfs.initial", "mbsync.initial",
     "≤ 0.8", lambda v: v <= 0.8, ""),
    ("mailfs initial / write floor (no sync)", "mailfs.initial", "floor.write",
     "≤ 1.5", lambda v: v <= 1.5, "both leave dirty pages behind"),
    ("mailfs + sync / write floor + sync", "mailfs.durable", "floor.sync",
     "≤ 1.5", lambda v: v <= 1.5, "both on disk"),
    ("mailfs + sync / mbsync + sync", "mailfs.durable", "mbsync.durable",
     "", None, "for context: mbsync fsyncs every message"),
    ("mbsync no-change / mailfs no-change", "mbsync.nochange", "mailfs.nochange",
     "≥ 5 at 100k", lambda v: v >= 5, "scale>=10"),
    ("headers mode / full mode, time", "headers.initial", "mailfs.initial", "≤ 0.2",
     lambda v: v <= 0.2, ""),
    ("headers mode / full mode, bytes received", "headers.bytes", "mailfs.bytes", "", None,
     "for context"),
    ("mbsync / mailfs, resync after {new} new + {flags} flag changes", "resync.mbsync",
     "resync.mailfs", "", None, "no §8 target; for context"),
    ("mount / native, `ls -l` of the largest folder", "mount.ls", "mount.ls_native", "≤ 1.5",
     lambda v: v <= 1.5, ""),
    ("mount / native, `find \\| wc -l`", "mount.find", "mount.find_native", "≤ 1.5",
     lambda v: v <= 1.5, ""),
    ("mount / native, `cat` of every file", "mount.cat", "mount.cat_native", "≤ 1.5",
     lambda v: v <= 1.5, ""),
    ("mount / native, `grep -r`", "mount.grep", "mount.grep_native", "≤ 1.5",
     lambda v: v <= 1.5, ""),
    ("new mail visible in the mount (median)", "mount.latency", None, "≤ 1 s",
     lambda v: v <= 1.0, ""),
    ("new mail visible in the mount (slowest)", "mount.latency_max", None, "≤ 1 s",
     lambda v: v <= 1.0, ""),
    ("delivery: mount / IMAP client in IDLE", "mount.latency", "mount.idle", "", None,
     "for context: Dovecot delays IDLE notifications by 0.5 s (NOTIFY_DELAY_MSECS)"),
    ("mailfs peak RSS, initial sync ({messages} messages)", "mailfs.rss", None, "< 64 MiB",
     lambda v: v < 64, ""),
    ("mailfs peak RSS, headers mode ({messages} messages)", "headers.rss", None, "< 64 MiB",
     lambda v: v < 64, ""),
    ("mailfs peak RSS, mount after reading every file", "mount.rss", None, "< 64 MiB",
     lambda v: v < 64, ""),
    ("mbsync initial / write floor + sync", "mbsync.initial", "floor.sync",
     "", None, "for context"),
    ("mbsync initial / raw fetch", "mbsync.initial", "raw.time", "", None, "for context"),
    ("mailfs initial / raw fetch", "mailfs.initial", "raw.time", "", None, "for context"),
]

# CalDAV/CardDAV (--dav: tests/bench/dav_bench.py, folded in per server).
DAV_METRICS = [
    ("vdirsyncer.initial", "vdirsyncer_initial", "vdirsyncer initial DAV sync", "s", "{:.3f}"),
    ("mailfs.initial", "mailfs_initial", "mailfs initial DAV sync", "s", "{:.3f}"),
    ("vdirsyncer.nochange", "vdirsyncer_nochange", "vdirsyncer no-change DAV sync", "s",
     "{:.3f}"),
    ("mailfs.nochange", "mailfs_nochange", "mailfs no-change DAV sync", "s", "{:.3f}"),
    ("mailfs.initial_rss", "mailfs_rss", "mailfs initial DAV sync: peak RSS", "MiB", "{:.1f}"),
]


def dav_rows(servers, items):
    """METRICS and RATIOS rows of the DAV part, for each server run."""
    metrics, ratios = [], []
    for s in servers:
        for _, key, label, unit, fmt in DAV_METRICS:
            metrics.append(Metric(f"dav.{s}_{key}", f"{label} ({s}, {items:,} items)", unit, fmt))
        ratios.append((f"vdirsyncer / mailfs, DAV initial sync ({s})",
                       f"dav.{s}_vdirsyncer_initial", f"dav.{s}_mailfs_initial", "≥ 5",
                       lambda v: v >= 5, ""))
        ratios.append((f"vdirsyncer / mailfs, DAV no-change sync ({s})",
                       f"dav.{s}_vdirsyncer_nochange", f"dav.{s}_mailfs_nochange", "≥ 20",
                       lambda v: v >= 20, ""))
    return metrics, ratios


# What DESIGN section 8 asks for and which part of the benchmark measures it
# (a contender name, or "dav" for --dav): listed under "not measured in this
# run" when that part did not run.
PARTS = [
    ("headers", "headers mode initial sync (≤ 0.2× full mode)"),
    ("resync", "resync after 100 new messages + 500 flag changes (mailfs vs mbsync)"),
    ("mount", "reads through the mount (`ls -l`, `find`, `cat`, `grep -r`) vs a native "
              "Maildir (≤ 1.5×), new-mail delivery latency (≤ 1 s)"),
    ("dav", "CalDAV/CardDAV initial and no-change sync vs vdirsyncer (≥ 5×, ≥ 20×): "
            "run with --dav"),
]


class Bench:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.values = {}    # metric key -> [value per run]
        self.skipped = {}   # contender name -> reason
        self.dest_describe = "?"

    def add(self, key, value):
        self.values.setdefault(key, []).append(value)

    def median(self, key):
        v = self.values.get(key)
        return statistics.median(v) if v else None


class Contender:
    """One thing measured. setup() may return a reason to skip; run(i) does
    run i on a fresh destination and calls bench.add()."""
    name = ""

    def __init__(self, bench, ctx):
        self.bench, self.ctx = bench, ctx

    def setup(self):
        return None

    def run(self, i):
        raise NotImplementedError


class RawFetch(Contender):
    name = "raw"

    def run(self, i):
        c = self.ctx
        secs, n, nbytes, cpu = raw_fetch(c.server.host, c.server.port, USER, PASSWORD,
                                         corpus.FOLDER_NAMES)
        if n != c.stats.messages or nbytes != c.stats.bytes:
            raise RuntimeError(f"raw fetch got {n} messages / {nbytes} bytes, the corpus "
                               f"has {c.stats.messages} / {c.stats.bytes}")
        self.bench.add("raw.time", secs)
        self.bench.add("raw.mbps", nbytes / secs / 1e6)
        self.bench.add("raw.cpu", cpu)


class WriteFloor(Contender):
    """The same bytes written locally as one file per message, in the same
    folder tree and with the same names; the messages are rebuilt in memory
    first (in batches of --floor-batch MB, not timed)."""
    name = "floor"

    def run(self, i):
        c = self.ctx
        dest = fresh_dir(os.path.join(c.dest.root, "floor"))
        budget = self.bench.args.floor_batch * 1_000_000
        total = corpus.count(c.scale)
        made = set()
        t_write = 0.0
        nfiles = 0
        start = 0
        while start < total:
            batch, size = [], 0
            while start < total and size < budget:
                m = corpus.make_message(start, c.seed)
                batch.append((os.path.join(corpus.folder_dir(dest, m.folder), "cur"),
                              m.maildir_name(), m.data))
                size += len(m.data)
                start += 1
            t0 = time.perf_counter()
            for d, name, data in batch:
                if d not in made:
                    for sub in ("cur", "new", "tmp"):
                        os.makedirs(os.path.join(os.path.dirname(d), sub), exist_ok=True)
                    made.add(d)
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
                nfiles += 1
            t_write += time.perf_counter() - t0
            del batch
        t0 = time.perf_counter()
        os.sync()
        t_sync = time.perf_counter() - t0
        if nfiles != c.stats.messages:
            raise RuntimeError(f"write floor wrote {nfiles} files")
        self.bench.add("floor.write", t_write)
        self.bench.add("floor.sync", t_write + t_sync)
        drop_dir(dest)


class Mbsync(Contender):
    """mbsync 1.4 with its defaults (FSync yes, unlimited pipeline) pulling every
    folder into a fresh Maildir laid out like the server's. The Maildir is
    handed over to Resync and MountReads when they run (ctx.handover)."""
    name = "mbsync"

    def setup(self):
        if not shutil.which("mbsync"):
            return "mbsync not installed"
        c = self.ctx
        self.dest = os.path.join(c.dest.root, "mbsync")
        self.rc = os.path.join(c.tmp, "mbsyncrc")
        self.argv = ["mbsync", "-q", "-c", self.rc, "-a"]
        self.log = os.path.join(c.tmp, "mbsync.log")
        with open(self.rc, "w") as f:
            f.write(f"""# written by tests/bench/bench.py
IMAPAccount bench
Host {c.server.host}
Port {c.server.port}
User {USER}
PassCmd "cat {c.pwfile}"
SSLType None
AuthMechs LOGIN

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {self.dest}/
Inbox {self.dest}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create Near
Sync Pull
Expunge None
SyncState *
""")
        return None

    def run(self, i):
        c = self.ctx
        fresh_dir(self.dest)
        log, argv = self.log, self.argv
        wall, rc, rss, cpu = run_measured(argv, log, timeout=self.bench.args.timeout,
                                          rusage=True)
        if rc != 0:
            raise failure("mbsync", rc, log)
        got, want = maildir_census(self.dest), corpus_census(c.stats)
        if got != want:
            raise RuntimeError(f"mbsync's Maildir holds {got}, the corpus {want}")
        self.bench.add("mbsync.initial", wall)
        self.bench.add("mbsync.durable", wall + timed_sync())
        self.bench.add("mbsync.cpu", cpu)
        self.bench.add("mbsync.rss", rss / 1024)
        settle()
        wall, rc, rss, cpu = run_measured(argv, log, timeout=self.bench.args.timeout)
        if rc != 0:
            raise failure("mbsync resync", rc, log)
        self.bench.add("mbsync.nochange", wall)
        if c.handover_wanted:
            c.handover[self.name] = self.dest
        else:
            drop_dir(self.dest)


def bytes_received(log):
    """What mailfs says it received from the server in its last run."""
    n = 0
    for m in re.finditer(r"disconnected from .* \((\d+) bytes received\)", tail(log)):
        n = int(m.group(1))
    return n


def mailfs_binary(bench, ctx):
    """The mailfs binary, copied once into the temporary directory (the working
    tree is shared: a rebuild during the run must neither fail a run nor mix two
    versions). Returns (path or None, why not)."""
    if getattr(ctx, "mailfs_bin", None):
        return ctx.mailfs_bin, None
    b = bench.args.mailfs
    cands = [b] if b else [os.path.join(REPO, "build", "fs", "mailfs"),
                           os.path.join(REPO, "build", "mailfs"), shutil.which("mailfs")]
    found = next((os.path.abspath(p) for p in cands if p and os.access(p, os.X_OK)), None)
    if not found:
        where = b or " or ".join(p for p in cands[:2])
        return None, (f"no mailfs binary at {where}: build it (meson setup build && "
                      f"ninja -C build) or pass --mailfs BIN")
    ctx.mailfs_bin = os.path.join(ctx.tmp, "mailfs")
    shutil.copy2(found, ctx.mailfs_bin)
    ctx.mailfs_from = found
    return ctx.mailfs_bin, None


def store_census(data):
    """{"messages", "S", "F", "R"} of a mailfs store (its store.db, read-only,
    with mailfs not running): what the items table says."""
    db = os.path.join(data, "mailfs", ACCOUNT, "store.db")
    out = {"messages": 0, "S": 0, "F": 0, "R": 0}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for (flags,) in con.execute("SELECT flags FROM items"):
            f = (flags or "").lower()
            out["messages"] += 1
            out["S"] += "seen" in f
            out["F"] += "flagged" in f
            out["R"] += "answered" in f
    finally:
        con.close()
    return out


class Mailfs(Contender):
    name = "mailfs"
    mode = "full"  # every folder whole: the comparison with mbsync

    def setup(self):
        self.bin, why = mailfs_binary(self.bench, self.ctx)
        if not self.bin:
            return why
        c = self.ctx
        self.cfg = os.path.join(c.tmp, f"mailfs-{self.name}.conf")
        with open(self.cfg, "w") as f:
            f.write(f"""; written by tests/bench/bench.py
[account {ACCOUNT}]
imap = imap://{c.server.host}:{c.server.port}
tls = none
user = {USER}
password_command = cat {c.pwfile}
sync_mode = {self.mode}
""")
        self.data = os.path.join(c.dest.root, f"mailfs-data-{self.name}")
        self.log = os.path.join(c.tmp, f"mailfs-{self.name}.log")
        self.argv = [self.bin, "--config", self.cfg, "sync", ACCOUNT]
        return None

    def env(self):
        return dict(os.environ, XDG_DATA_HOME=self.data,
                    XDG_CONFIG_HOME=os.path.join(self.ctx.tmp, "mailfs-config"))

    def run(self, i):
        c = self.ctx
        fresh_dir(self.data)
        log, argv, env = self.log, self.argv, self.env()
        wall, rc, rss, cpu = run_measured(argv, log, env=env, timeout=self.bench.args.timeout,
                                          rusage=True)
        if rc != 0:
            raise failure("mailfs sync", rc, log)
        if self.mode == "headers":
            self.bench.add("headers.initial", wall)
            self.bench.add("headers.bytes", bytes_received(log) / 1e6)
            self.bench.add("headers.rss", rss / 1024)
            self.verify_headers(c)
            drop_dir(self.data)
            return
        self.bench.add("mailfs.initial", wall)
        self.bench.add("mailfs.durable", wall + timed_sync())
        self.bench.add("mailfs.cpu", cpu)
        self.bench.add("mailfs.rss", rss / 1024)
        self.bench.add("mailfs.bytes", bytes_received(log) / 1e6)
        self.verify(c.stats.messages, c.stats.bytes)
        settle()
        wall, rc, rss, cpu = run_measured(argv, log, env=env, timeout=self.bench.args.timeout)
        if rc != 0:
            raise failure("mailfs resync", rc, log)
        self.bench.add("mailfs.nochange", wall)
        if c.handover_wanted:
            c.handover[self.name] = self.data
        else:
            drop_dir(self.data)

    def verify(self, messages, nbytes_want):
        """The store must hold the whole corpus: one content file per message under
        content/ (store/store.h), as many bytes as the corpus. A mailfs that synced
        less (headers mode, a folder skipped) would be fast and wrong."""
        content = os.path.join(self.data, "mailfs", ACCOUNT, "content")
        if not os.path.isdir(content):
            self.bench.log(f"mailfs: no {content}: cannot check what was stored")
            return
        n = nbytes = 0
        for d, dirs, files in os.walk(content):
            for name in files:
                n += 1
                nbytes += os.lstat(os.path.join(d, name)).st_size
        if (n, nbytes) != (messages, nbytes_want):
            raise RuntimeError(f"mailfs stored {n} messages / {nbytes} bytes, the server "
                               f"has {messages} / {nbytes_want} (the benchmark "
                               "measures full mode: every message whole)")


class MailfsHeaders(Mailfs):
    """The same initial sync with every mail folder in headers mode: the
    config line `sync_mode = headers` (fs/config.c) sets the mode of every
    mail folder, Inbox too (fs/config.h)."""
    name = "headers"
    mode = "headers"

    def verify_headers(self, c):
        """Every message is in the store, whole or in part."""
        content = os.path.join(self.data, "mailfs", ACCOUNT, "content")
        n = sum(len(files) for _, _, files in os.walk(content))
        if n != c.stats.messages:
            raise RuntimeError(f"mailfs (headers) stored {n} messages, the corpus has "
                               f"{c.stats.messages}")


# --- changes on the server ----------------------------------------------------------

FLAG_NAMES = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered"}
CHANGE_NEW = 100        # new messages in the change set
CHANGE_FLAGS = 500      # flag changes in the change set, each on another message
# Which flag a change toggles: mostly read/unread, as in real use.
CHANGE_FLAG_MIX = [("S", 0.6), ("F", 0.3), ("R", 0.1)]


def _flag_letters(flags):
    return {k for k, v in FLAG_NAMES.items() if v.lower().encode() in flags.lower()}


class ServerChanges:
    """Changes made on the server with an independent client (imaplib, not the
    contenders' code), kept in an undo log so that revert() puts the server
    back to the corpus: new messages are expunged, toggled flags toggled back.
    Only messages appended here carry \\Deleted, so EXPUNGE removes only them."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.appended = {}   # folder -> [uid]
        self.toggled = []    # (folder, flag letter, added, [uid])

    def client(self):
        return self.ctx.server.client(USER)

    @property
    def pending(self):
        return bool(self.appended or self.toggled)

    def change_set(self, new=CHANGE_NEW, nflags=CHANGE_FLAGS):
        """Apply the change set: `new` new messages (corpus.make_message past the
        corpus's last index, so their folders follow the corpus's shares, and their
        flags are the generator's), and `nflags` flag changes, each on a different
        message, spread over the folders in proportion to their size. The same
        change set every time (deterministic in --seed), on a server that holds the
        corpus. Returns (census a complete copy holds afterwards, total messages,
        total bytes)."""
        import dovecot
        c = self.ctx
        stats = c.stats
        want = corpus_census(stats)
        nbytes = stats.bytes
        rng = random.Random(c.seed * 7 + 500)
        total = stats.messages
        nflags = min(nflags, total)
        folders = [f for f in corpus.FOLDER_NAMES if stats.folders.get(f, {}).get("messages")]
        exact = {f: nflags * stats.folders[f]["messages"] / total for f in folders}
        quota = {f: int(exact[f]) for f in folders}
        for f in sorted(folders, key=lambda f: quota[f] - exact[f])[:nflags - sum(quota.values())]:
            quota[f] += 1
        imap = self.client()
        try:
            for folder in folders:
                k = min(quota[folder], stats.folders[folder]["messages"])
                if not k:
                    continue
                typ, data = imap.select(dovecot.mailbox_arg(folder))
                if typ != "OK":
                    raise RuntimeError(f"SELECT {folder}: {data}")
                if int(data[0]) != stats.folders[folder]["messages"]:
                    raise RuntimeError(f"{folder} holds {int(data[0])} messages on the server, "
                                       f"the corpus {stats.folders[folder]['messages']} "
                                       "(a change not reverted?)")
                seqs = sorted(rng.sample(range(1, stats.folders[folder]["messages"] + 1), k))
                typ, data = imap.fetch(",".join(map(str, seqs)), "(UID FLAGS)")
                if typ != "OK":
                    raise RuntimeError(f"FETCH in {folder}: {data}")
                have = {}
                for d in data:
                    line = d[0] if isinstance(d, tuple) else d
                    if not line:
                        continue
                    m = re.match(rb"(\d+) ", line)
                    u = re.search(rb"UID (\d+)", line)
                    fl = re.search(rb"FLAGS \(([^)]*)\)", line)
                    if m and u and fl:
                        have[int(m.group(1))] = (int(u.group(1)), _flag_letters(fl.group(1)))
                if len(have) != k:
                    raise RuntimeError(f"FETCH in {folder}: {len(have)} answers for {k} "
                                       "messages")
                groups = {}
                for seq in seqs:
                    letter = corpus._pick(rng, CHANGE_FLAG_MIX)
                    uid, letters = have[seq]
                    add = letter not in letters
                    groups.setdefault((letter, add), []).append(uid)
                for (letter, add), uids in sorted(groups.items()):
                    self._store(imap, uids, add, FLAG_NAMES[letter])
                    self.toggled.append((folder, letter, add, uids))
                    want[letter] += len(uids) if add else -len(uids)
            for k in range(new):
                m = corpus.make_message(corpus.count(c.scale) + k, c.seed)
                self.append(imap, m.folder, m.data, [FLAG_NAMES[x] for x in m.flags], m.time)
                want["messages"] += 1
                for x in m.flags:
                    want[x] += 1
                nbytes += len(m.data)
        finally:
            imap.logout()
        return want, want["messages"], nbytes

    def append(self, imap, folder, data, flags=(), when=None):
        """APPEND one message (recorded for revert); returns its UID."""
        import dovecot
        uid = dovecot.append(imap, folder, data, flags, when)
        if uid is None:
            raise RuntimeError("APPEND: no APPENDUID (UIDPLUS) to undo it by")
        self.appended.setdefault(folder, []).append(uid)
        return uid

    @staticmethod
    def _store(imap, uids, add, flag):
        typ, data = imap.uid("STORE", ",".join(map(str, uids)),
                             "+FLAGS.SILENT" if add else "-FLAGS.SILENT", f"({flag})")
        if typ != "OK":
            raise RuntimeError(f"UID STORE {flag}: {data}")

    def revert(self):
        """Undo everything applied, then check that every folder holds as many
        messages as the corpus again."""
        import dovecot
        if not self.pending:
            return
        stats = self.ctx.stats
        imap = self.client()
        try:
            for folder in corpus.FOLDER_NAMES:
                toggles = [t for t in self.toggled if t[0] == folder]
                uids = self.appended.get(folder, [])
                if not toggles and not uids:
                    continue
                typ, data = imap.select(dovecot.mailbox_arg(folder))
                if typ != "OK":
                    raise RuntimeError(f"SELECT {folder}: {data}")
                for _, letter, add, tuids in toggles:
                    self._store(imap, tuids, not add, FLAG_NAMES[letter])
                if uids:
                    self._store(imap, uids, True, "\\Deleted")
                    typ, data = imap.expunge()
                    if typ != "OK":
                        raise RuntimeError(f"EXPUNGE in {folder}: {data}")
            self.toggled, self.appended = [], {}
            for folder in corpus.FOLDER_NAMES:
                typ, data = imap.select(dovecot.mailbox_arg(folder), readonly=True)
                n = stats.folders.get(folder, {}).get("messages", 0)
                if typ != "OK" or int(data[0]) != n:
                    raise RuntimeError(f"after reverting the changes {folder} holds "
                                       f"{data[0]!r} messages, the corpus {n}")
        finally:
            imap.logout()


class Resync(Contender):
    """Resync after a change set (ServerChanges.change_set: 100 new messages and
    500 flag changes spread over the folders, made on the server by an
    independent client) on the destinations this run's mbsync and mailfs
    initial syncs made (ctx.handover). Both resync the very same server state:
    the change set is made once, then mbsync and mailfs resync one after the
    other (mbsync first in odd runs, mailfs first in even ones, so that neither
    always comes second to a server that has just served the new messages), and
    the change set stays until the end of the run (MountReads reads those
    destinations); end_round() reverts it."""
    name = "resync"

    def run(self, i):
        c = self.ctx
        have = [k for k in ("mbsync", "mailfs") if k in c.handover]
        if not have:
            raise RuntimeError("no destination from this run's mbsync or mailfs initial sync")
        want, c.expect_messages, c.expect_bytes = c.changes.change_set()
        c.changed = True
        for who in (have if i % 2 == 0 else have[::-1]):
            settle()
            if who == "mbsync":
                mb = c.contenders["mbsync"]
                wall, rc, _, _ = run_measured(mb.argv, mb.log, timeout=self.bench.args.timeout)
                if rc != 0:
                    raise failure("mbsync resync after changes", rc, mb.log)
                got = maildir_census(c.handover["mbsync"])
                if got != want:
                    raise RuntimeError(f"after the changes mbsync's Maildir holds {got}, "
                                       f"the server {want}")
                self.bench.add("resync.mbsync", wall)
            else:
                mf = c.contenders["mailfs"]
                wall, rc, _, _ = run_measured(mf.argv, mf.log, env=mf.env(),
                                              timeout=self.bench.args.timeout)
                if rc != 0:
                    raise failure("mailfs resync after changes", rc, mf.log)
                mf.verify(c.expect_messages, c.expect_bytes)
                got = store_census(c.handover["mailfs"])
                if got != want:
                    raise RuntimeError(f"after the changes mailfs's store holds {got}, "
                                       f"the server {want}")
                self.bench.add("resync.mailfs", wall)
                self.bench.add("resync.mailfs_bytes", bytes_received(mf.log) / 1e6)


# --- reads through the mount, delivery latency ---------------------------------------

# grep -r looks for this; no message of the corpus holds it.
ABSENT = "mailfs-bench: a string that is in no message 7c1e5d"
DELIVERIES = 10


def _mountinfo_has(path):
    """True when path is a mount point (from /proc/self/mountinfo, so a hung
    FUSE daemon cannot block the check)."""
    path = os.path.abspath(path)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            p = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if p == path:
                return True
    return False


_mounts = {}  # mount point -> the mailfs process serving it (cleaned up on exit)


def unmount(mnt, p, timeout=30):
    """fusermount3 -u, then wait for the daemon to exit; if it will not go
    (busy, hung), kill it and detach the mount point. Returns the daemon's
    exit status (None when it had to be killed)."""
    killed = False
    if _mountinfo_has(mnt):
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True)
        if r.returncode != 0:
            _kill(p)
            killed = True
            subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill(p)
        killed = True
    if _mountinfo_has(mnt):
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
    _mounts.pop(mnt, None)
    _children.discard(p)
    return None if killed else p.returncode


def vm_hwm_mib(pid):
    """Peak RSS (VmHWM) of a running process, MiB."""
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) / 1024 if m else None


class IdleWatcher:
    """An independent IMAP client (raw socket) in IDLE on INBOX that notes when
    each `* n EXISTS` arrives: the server's own share of the delivery delay
    (Dovecot waits NOTIFY_DELAY_MSECS = 500 ms after a change before it tells
    IDLE clients, src/lib-storage/mailbox-watch.c)."""

    def __init__(self, host, port):
        self.events = []
        self.sock = socket.create_connection((host, port))
        self.f = self.sock.makefile("rb")
        self.f.readline()
        for tag, cmd in ((b"a", b"LOGIN " + _q(USER) + b" " + _q(PASSWORD)),
                         (b"b", b"SELECT INBOX")):
            self.sock.sendall(tag + b" " + cmd + b"\r\n")
            while True:
                line = self.f.readline()
                if not line:
                    raise ConnectionError("IDLE watcher: server closed the connection")
                if line.startswith(tag + b" "):
                    if not line.startswith(tag + b" OK"):
                        raise RuntimeError(f"IDLE watcher: {line!r}")
                    break
        self.sock.sendall(b"i IDLE\r\n")
        line = self.f.readline()
        if not line.startswith(b"+"):
            raise RuntimeError(f"IDLE watcher: IDLE answered {line!r}")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.f:
                if re.match(rb"\* \d+ EXISTS", line):
                    self.events.append(time.perf_counter())
        except (OSError, ValueError):
            pass

    def first_after(self, t0):
        return next((t for t in self.events if t >= t0), None)

    def close(self):
        try:
            self.sock.sendall(b"DONE\r\nz LOGOUT\r\n")
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.thread.join(5)
        self.f.close()
        self.sock.close()


def mount_dir(folder):
    """A server folder's directory in the mount (DESIGN section 2: INBOX is Inbox)."""
    parts = folder.split("/")
    if parts[0].upper() == "INBOX":
        parts[0] = "Inbox"
    return os.path.join(*parts)


class MountReads(Contender):
    """Reads through the mount against the same on mbsync's Maildir, then the
    delay from delivery to visibility in the mount.

    mailfs is mounted (`mailfs --config CFG bench MNT -f`) on the store this
    run's initial sync made (and Resync brought up to date), so the store is
    warm; the native side is mbsync's Maildir of this run, which holds the same
    messages. `mailfs sync MNT` first waits until the mount's own startup sync
    is done. Each command runs once on each side untimed (page cache, dentries,
    the kernel's attribute cache), then --read-reps times, alternating which
    side goes first; a run's value is the median of its repetitions. Then
    --deliveries messages are APPENDed to INBOX by an independent client, one
    at a time (a pause of 0.2-0.5 s before each), and the mounted Inbox is
    listed every 5 ms until a new name appears: the time from just before the
    APPEND is the delay."""
    name = "mount"

    def setup(self):
        if not shutil.which("fusermount3"):
            return "fusermount3 not installed (apt-get install fuse3)"
        if not os.path.exists("/dev/fuse"):
            return "no /dev/fuse"
        return None

    def run(self, i):
        c = self.ctx
        data = c.handover.get("mailfs")
        if not data:
            raise RuntimeError("no mailfs store from this run's initial sync")
        native = c.handover.get("mbsync")
        mf = c.contenders["mailfs"]
        mnt = os.path.join(c.tmp, "mnt")
        os.makedirs(mnt, exist_ok=True)
        log = os.path.join(c.tmp, "mailfs-mount.log")
        cmdlog = os.path.join(c.tmp, "reads.log")
        env = mf.env()
        argv = [mf.bin, "--config", mf.cfg, ACCOUNT, mnt, "-f"]
        inbox = os.path.join(mnt, "Inbox")
        t0 = time.perf_counter()
        with open(log, "ab") as out:
            out.write(f"\n$ {' '.join(argv)}\n".encode())
            out.flush()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=env, start_new_session=True)
        _children.add(p)
        _mounts[mnt] = p
        try:
            while True:
                if p.poll() is not None:
                    raise failure("mailfs mount", p.returncode, log)
                if _mountinfo_has(mnt):
                    try:
                        os.listdir(inbox)
                        break
                    except OSError:
                        pass
                if time.perf_counter() - t0 > 60:
                    last = (tail(log).strip().splitlines() or [""])[-1]
                    raise RuntimeError(f"mailfs did not mount {mnt} within 60 s: {last}")
                time.sleep(0.005)
            self.bench.add("mount.start", time.perf_counter() - t0)
            # Let the mount's startup sync finish (nothing to do, but it checks
            # every folder) before anything is timed.
            wall, rc, _, _ = run_measured([mf.bin, "--config", mf.cfg, "sync", mnt], log,
                                          env=env, timeout=self.bench.args.timeout)
            if rc != 0:
                raise failure("mailfs sync through the mount", rc, log)
            self.reads(mnt, native, cmdlog)
            self.latency(i, inbox, p, log)
            rss = vm_hwm_mib(p.pid)
            if rss is not None:
                self.bench.add("mount.rss", rss)
        finally:
            rc = unmount(mnt, p)
        if rc != 0:
            raise failure("mailfs mount (at unmount)", rc, log)

    def reads(self, mnt, native, cmdlog):
        c = self.ctx
        n_mount = nbytes = 0
        for d, dirs, files in os.walk(mnt):
            for name in files:
                n_mount += 1
                nbytes += os.lstat(os.path.join(d, name)).st_size
        if (n_mount, nbytes) != (c.expect_messages, c.expect_bytes):
            raise RuntimeError(f"the mount shows {n_mount} files / {nbytes} bytes, the "
                               f"server has {c.expect_messages} / {c.expect_bytes}")
        if native:
            n_native = maildir_census(native)["messages"]
            if n_native != n_mount:
                raise RuntimeError(f"mbsync's Maildir holds {n_native} messages, the mount "
                                   f"{n_mount}: not the same work")
        largest = max(c.stats.folders, key=lambda f: c.stats.folders[f]["messages"])
        q = shlex.quote
        mdir = os.path.join(mnt, mount_dir(largest))
        ops = []  # (name, mount command, native command or None, good exit codes)
        ndir = corpus.folder_dir(native, largest) if native else None
        ops.append(("ls", f"ls -l {q(mdir)} >/dev/null",
                    native and f"ls -l {q(ndir + '/cur')} {q(ndir + '/new')} >/dev/null",
                    (0,)))
        for name, tmpl, ok in (
                ("find", "find {} | wc -l >/dev/null", (0,)),
                ("cat", "find {} -type f -exec cat {{}} + >/dev/null", (0,)),
                ("grep", "grep -r -F -e " + q(ABSENT) + " {} >/dev/null", (1,))):
            ops.append((name, tmpl.format(q(mnt)), native and tmpl.format(q(native)), ok))

        def timed(cmd, ok):
            wall, rc, _, _ = run_measured(["sh", "-c", cmd], cmdlog,
                                          timeout=self.bench.args.timeout)
            if rc not in ok:
                raise failure(cmd, rc, cmdlog)
            return wall

        for name, mcmd, ncmd, ok in ops:  # warm both sides, untimed
            if ncmd:
                timed(ncmd, ok)
            timed(mcmd, ok)
        got = {}
        for r in range(self.bench.args.read_reps):
            for name, mcmd, ncmd, ok in ops:
                sides = [("mount", mcmd)] + ([("native", ncmd)] if ncmd else [])
                for side, cmd in (sides if r % 2 == 0 else sides[::-1]):
                    got.setdefault((name, side), []).append(timed(cmd, ok))
        for (name, side), v in got.items():
            self.bench.add(f"mount.{name}" + ("_native" if side == "native" else ""),
                           statistics.median(v))

    def latency(self, i, inbox, p, log):
        c = self.ctx
        n = self.bench.args.deliveries
        if n <= 0:
            return
        msgs, k = [], corpus.count(c.scale) + CHANGE_NEW + 1000 * (i + 1)
        while len(msgs) < n:
            m = corpus.make_message(k, c.seed, folder="INBOX")
            k += 1
            if m.kind != "attachment":  # new mail as it mostly is: 2-80 KB
                msgs.append(m.data)
        rng = random.Random(c.seed + i)
        time.sleep(1)  # the mount back in IDLE after the sync through it
        imap = c.changes.client()
        watcher = IdleWatcher(c.server.host, c.server.port)
        delays, idle = [], []
        try:
            for data in msgs:
                time.sleep(0.2 + 0.3 * rng.random())
                before = set(os.listdir(inbox))
                t0 = time.perf_counter()
                c.changes.append(imap, "INBOX", data)
                while True:
                    names = os.listdir(inbox)
                    if len(names) > len(before) or not before.issuperset(names):
                        break
                    if time.perf_counter() - t0 > 30:
                        raise RuntimeError("a message APPENDed to INBOX was not in the mount "
                                           "after 30 s")
                    if p.poll() is not None:
                        raise failure("mailfs mount", p.returncode, log)
                    time.sleep(0.005)
                delays.append(time.perf_counter() - t0)
                while watcher.first_after(t0) is None and time.perf_counter() - t0 < 10:
                    time.sleep(0.005)
                t1 = watcher.first_after(t0)
                if t1 is not None:
                    idle.append(t1 - t0)
        finally:
            watcher.close()
            imap.logout()
        self.bench.log(f"delivery delays: mount {' '.join(f'{d:.3f}' for d in delays)} s; "
                       f"IMAP client in IDLE {' '.join(f'{d:.3f}' for d in idle)} s")
        self.bench.add("mount.latency", statistics.median(delays))
        self.bench.add("mount.latency_max", max(delays))
        if len(idle) == len(delays):
            self.bench.add("mount.idle", statistics.median(idle))


CONTENDERS = [RawFetch, WriteFloor, Mbsync, Mailfs, MailfsHeaders, Resync, MountReads]


# --- machine and report --------------------------------------------------------------

def _first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def machine(tmp):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else cpu
        with open("/proc/meminfo") as f:
            mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) / 2**20
    except OSError:
        mem = 0
    fs = " on ".join(_first_line(["findmnt", "-no", "FSTYPE,SOURCE", "-T", tmp]).split())
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(mem, 1),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "filesystem": fs,
        "dovecot": _first_line(["/usr/sbin/dovecot", "--version"]),
        "mbsync": _first_line(["mbsync", "--version"]),
        "python": platform.python_version(),
    }


def report(bench, mach, stats, scale, runs, extra, metrics=None, ratios=None,
           dav_md=None):
    """The results as Markdown (printed and written with --out). metrics and
    ratios: the rows (default METRICS and RATIOS; --dav adds its own); dav_md:
    dav_bench.py's own report, appended."""
    metrics = METRICS if metrics is None else metrics
    ratios = RATIOS if ratios is None else ratios
    params = {"messages": f"{stats.messages:,}", "new": CHANGE_NEW,
              "flags": min(CHANGE_FLAGS, stats.messages),
              "deliveries": bench.args.deliveries, "reps": bench.args.read_reps}
    L = []
    L.append(f"## mailfs benchmark — {mach['date']}")
    L.append("")
    L.append(f"- corpus: {stats.messages:,} messages, {stats.bytes / 1e9:.3f} GB in "
             f"{len(stats.folders)} folders (--scale {scale:g}, seed {bench.args.seed})")
    L.append(f"- machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['memory_gib']} GiB, "
             f"Linux {mach['kernel']}, {mach['os']}, {mach['filesystem']}")
    L.append(f"- versions: Dovecot {mach['dovecot'].split(' (')[0]}, "
             f"{mach['mbsync']}, Python {mach['python']}"
             + (f", {mach['mailfs']}" if mach.get("mailfs") else ""))
    L.append(f"- destinations: {bench.dest_describe}")
    L.append(f"- method: median of {runs} runs (min: the best run; max for MB/s), "
             "contenders interleaved, fresh destination each run, sync(2) before each "
             "measurement, server caches warm for all (tests/bench/README.md)")
    if any(k.startswith("resync.") for k in bench.values):
        L.append(f"- resync after changes: one change set per run ({params['new']} new "
                 f"messages, {params['flags']} flag changes, spread over the folders, made "
                 "with imaplib), resynced by mbsync and mailfs on the destinations of this "
                 "run's initial syncs (order alternating per run), reverted at the end of "
                 "the run")
    if any(k.startswith("mount.") for k in bench.values):
        native = any(k.endswith("_native") for k in bench.values)
        L.append("- reads: the mount on the store of this run's initial sync"
                 + (" vs mbsync's Maildir of this run (the same messages)" if native else "")
                 + f"; each command once untimed on each side, then {params['reps']} times "
                 "(alternating sides), median; delivery: "
                 f"{params['deliveries']} APPENDs to INBOX (imaplib), the mounted Inbox "
                 "listed every 5 ms until the new file shows; a raw IMAP client in IDLE on "
                 "INBOX notes when the server announces each one")
    for line in extra:
        L.append(f"- {line}")
    L.append("")
    head = ["measurement", "unit"] + [f"run {i + 1}" for i in range(runs)] + ["median", "min"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * 2 + "---:|" * (runs + 2))
    for m in metrics:
        vals = bench.values.get(m.key)
        name = m.key.split(".")[0]
        if vals:
            cells = [m.fmt.format(v) for v in vals] + [""] * (runs - len(vals))
            cells.append("**" + m.fmt.format(statistics.median(vals)) + "**")
            cells.append(m.fmt.format(min(vals) if m.unit != "MB/s" else max(vals)))
        elif name in bench.skipped:
            word = "failed" if bench.skipped[name].startswith("failed") else "skipped"
            cells = [word] + [""] * (runs + 1)
        else:
            continue
        L.append(f"| {m.label.format(**params)} | {m.unit} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("| ratio (of medians) | value | DESIGN §8 target | |")
    L.append("|---|---:|---|---|")
    by_key = {m.key: m for m in metrics}
    for label, num, den, target, check, note in ratios:
        a = bench.median(num)
        b = bench.median(den) if den else 1.0
        if note.startswith("scale>="):
            need = float(note[len("scale>="):])
            if scale < need:
                check = None
                note = f"judged at --scale {need:g} and above"
            else:
                note = ""
        if a is None or b is None or b == 0:
            value, verdict = "–", "not measured"
        else:
            v = a / b
            m = by_key[num]
            value = f"{m.fmt.format(v)} {m.unit}" if den is None else f"{v:.2f}×"
            verdict = ("met" if check(v) else "**missed**") if check else ""
        if note:
            verdict = f"{verdict} ({note})" if verdict else note
        L.append(f"| {label.format(**params)} | {value} | {target} | {verdict} |")
    L.append("")
    for name, why in bench.skipped.items():
        L.append(f"- {name}: {why}" if why.startswith("failed") else f"- {name}: skipped — {why}")
    missing = [what for part, what in PARTS
               if not any(k.split(".")[0] == part for k in bench.values)
               and part not in bench.skipped]
    if missing:
        L.append("- not measured in this run: " + "; ".join(missing))
    if dav_md:
        # dav_bench.py's report, its headings one level down (a part of this one)
        L.append("")
        L.extend("#" + x if x.startswith("#") else x for x in dav_md.strip().split("\n"))
    return "\n".join(L) + "\n"


# --- main --------------------------------------------------------------------------------

class Context:
    pass


def end_round(ctx):
    """After each run: revert the server changes (change set, deliveries) and
    drop the destinations that were handed over to Resync and MountReads."""
    try:
        ctx.changes.revert()
    finally:
        for path in ctx.handover.values():
            drop_dir(path)
        ctx.handover.clear()
        ctx.expect_messages, ctx.expect_bytes = ctx.stats.messages, ctx.stats.bytes


def dav_sizes(scale):
    """DESIGN section 8's 4,700 DAV items per unit of scale: (events, tasks, contacts)."""
    return max(1, round(2000 * scale)), round(700 * scale), max(1, round(2000 * scale))


def run_dav(args, ctx, bench, log):
    """tests/bench/dav_bench.py as a child process (its own servers, corpus and
    destinations, inside this run's temporary directory); folds its values into
    bench.values under dav.SERVER_... Returns its Markdown report or None."""
    events, tasks, contacts = dav_sizes(args.scale)
    out_md = os.path.join(ctx.tmp, "dav_results.md")
    out_json = os.path.join(ctx.tmp, "dav_results.json")
    argv = [sys.executable, os.path.join(HERE, "dav_bench.py"), "--server", args.dav_server,
            "--runs", str(args.runs), "--events", str(events), "--tasks", str(tasks),
            "--contacts", str(contacts), "--seed", str(args.seed), "--out", out_md,
            "--json", out_json, "--dest-fs", args.dest_fs, "--timeout", str(args.timeout),
            "--tmpdir", ctx.tmp]
    binary = getattr(ctx, "mailfs_bin", None) or args.mailfs
    if binary:
        argv += ["--mailfs", binary]
    log(f"dav: {' '.join(argv[1:])}")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    _children.add(p)
    last = []
    try:
        for line in p.stderr:
            text = line.decode(errors="replace").rstrip()
            print(f"    dav| {text}", file=sys.stderr, flush=True)
            last = (last + [text])[-5:]
        p.wait()
    except KeyboardInterrupt:
        # Let dav_bench.py clean up its servers and loop device itself.
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        raise
    finally:
        if p.returncode is None:
            _kill(p)
        _children.discard(p)
    try:
        with open(out_json) as f:
            got = json.load(f)
    except (OSError, ValueError):
        bench.skipped["dav"] = (f"failed: dav_bench.py exited {p.returncode}: "
                                + (last[-1] if last else ""))
        return None
    for server, vals in got.get("values", {}).items():
        for src, key, *_ in DAV_METRICS:
            if vals.get(src):
                bench.values[f"dav.{server}_{key}"] = vals[src]
    failed = [f"{s} {c}: {why}" for s, d in got.get("failed", {}).items() for c, why in d.items()]
    if failed:
        bench.skipped["dav"] = "failed: " + "; ".join(failed)
    elif p.returncode != 0:
        bench.skipped["dav"] = f"failed: dav_bench.py exited {p.returncode}"
    try:
        with open(out_md) as f:
            return f.read()
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--scale", type=float, default=1,
                    help="corpus size in units of 10,000 messages (10 = 100,000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--mailfs", metavar="BIN", help="mailfs binary (default build/fs/mailfs)")
    ap.add_argument("--only", default="", metavar="LIST",
                    help="comma-separated subset of: " + ",".join(c.name for c in CONTENDERS)
                    + " (resync needs mbsync and/or mailfs, mount needs mailfs)")
    ap.add_argument("--out", metavar="FILE", help="also write the Markdown report here")
    ap.add_argument("--json", metavar="FILE", help="also write every value as JSON")
    ap.add_argument("--seed", type=int, default=corpus.SEED)
    ap.add_argument("--tmpdir", default=None,
                    help="where the server, the logs and (--dest-fs tmpdir) the "
                         "destinations live (default $TMPDIR or /tmp)")
    ap.add_argument("--floor-batch", type=int, default=2000, metavar="MB",
                    help="write floor: bytes held in memory per batch (default 2000 MB)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per command")
    ap.add_argument("--dest-fs", choices=("auto", "loop", "tmpdir"), default="auto",
                    help="where destinations are written: a journaled ext4 loop image "
                         "(loop), the temporary directory (tmpdir), or loop only when the "
                         "temporary directory is on ext4 without a journal (auto, default; "
                         "see DestFs)")
    ap.add_argument("--read-reps", type=int, default=3, metavar="N",
                    help="mount: timed repetitions of each read command per run and side "
                         "(the run's value is their median; default 3)")
    ap.add_argument("--deliveries", type=int, default=DELIVERIES, metavar="N",
                    help=f"mount: messages delivered per run for the latency (default "
                         f"{DELIVERIES}; 0: none)")
    ap.add_argument("--dav", action="store_true",
                    help="also run tests/bench/dav_bench.py (CalDAV/CardDAV vs vdirsyncer, "
                         "4,700 items per unit of --scale) and fold its results in")
    ap.add_argument("--dav-server", choices=("radicale", "xandikos", "both"),
                    default="radicale", help="--dav: which server (default radicale)")
    ap.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                    help="wait up to this long for other processes to leave the CPUs idle")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and then
    # Python would not turn it into KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    only = {x for x in args.only.split(",") if x}
    unknown = only - {c.name for c in CONTENDERS}
    if unknown:
        ap.error(f"--only: unknown {','.join(sorted(unknown))}")
    setup(log)
    import dovecot  # tests/servers/dovecot.py; after setup() so the package is there

    t_start = time.monotonic()
    bench = Bench(args, log)
    ctx = Context()
    ctx.scale, ctx.seed = args.scale, args.seed
    ctx.tmp = tempfile.mkdtemp(prefix="mailfs-bench-", dir=args.tmpdir)
    ctx.server = ctx.dest = None
    ctx.handover = {}
    ctx.changes = ServerChanges(ctx)
    # Resync and MountReads work on the destinations of the initial syncs of
    # the same run: mbsync's Maildir and mailfs's store are then both kept
    # until the end of the run.
    ctx.handover_wanted = not only or bool(only & {"resync", "mount"})
    status = 1
    try:
        ctx.pwfile = os.path.join(ctx.tmp, "password")
        with open(ctx.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(ctx.pwfile, 0o600)
        mach = machine(ctx.tmp)
        ctx.server = dovecot.Dovecot(os.path.join(ctx.tmp, "dovecot"), users={USER: PASSWORD})
        ctx.server.start()
        log(f"dovecot on {ctx.server.host}:{ctx.server.port} in {ctx.server.basedir}")
        ctx.stats = corpus.load(ctx.server, USER, args.scale, args.seed, log=log)
        ctx.expect_messages, ctx.expect_bytes = ctx.stats.messages, ctx.stats.bytes
        os.sync()
        copies = 2.3 if ctx.handover_wanted else 1.5
        size = (int(ctx.stats.bytes * copies) + 2**31) // 2**20 * 2**20
        ctx.dest = DestFs(ctx.tmp, args.dest_fs, size, log)
        bench.dest_describe = ctx.dest.describe

        contenders = []
        for cls in CONTENDERS:
            if only and cls.name not in only:
                continue
            c = cls(bench, ctx)
            why = c.setup()
            active = {x.name for x in contenders}
            if not why and c.name == "resync" and not active & {"mbsync", "mailfs"}:
                why = "needs mbsync or mailfs (their destinations of the same run)"
            if not why and c.name == "mount" and "mailfs" not in active:
                why = "needs mailfs (the mount is on the store of its initial sync)"
            if why:
                bench.skipped[c.name] = why
                log(f"{c.name}: skipped — {why}")
            else:
                contenders.append(c)
        ctx.contenders = {c.name: c for c in contenders}
        ctx.handover_wanted = bool(ctx.contenders.keys() & {"resync", "mount"})
        if getattr(ctx, "mailfs_bin", None):
            mach["mailfs"] = (_first_line([ctx.mailfs_bin, "--version"])
                              + f" ({ctx.mailfs_from}, built "
                              + time.strftime("%Y-%m-%d %H:%M",
                                              time.localtime(os.stat(ctx.mailfs_from).st_mtime))
                              + ")")
        # A busy machine (another engineer's fuzzer or build) skews everything.
        cpus, top = other_load_now()
        deadline = time.monotonic() + args.wait_idle
        while cpus > 0.1 and time.monotonic() < deadline:
            log(f"machine busy: other processes use {describe_load(cpus, top)}; waiting "
                f"(--wait-idle, {deadline - time.monotonic():.0f} s left)")
            time.sleep(min(30, max(0, deadline - time.monotonic())))
            cpus, top = other_load_now()
        if cpus > 0.1:
            log(f"WARNING: other processes use {describe_load(cpus, top)}: "
                "the figures will be skewed")
        load = OtherLoad()
        # Warm Dovecot: one full FETCH of everything (indexes, page cache).
        secs, n, nbytes, _ = raw_fetch(ctx.server.host, ctx.server.port, USER, PASSWORD,
                                       corpus.FOLDER_NAMES)
        log(f"warm-up: fetched {n} messages, {nbytes / 1e9:.3f} GB in {secs:.2f} s")
        if n != ctx.stats.messages or nbytes != ctx.stats.bytes:
            raise RuntimeError(f"warm-up fetched {n} messages / {nbytes} bytes, the "
                               f"corpus has {ctx.stats.messages} / {ctx.stats.bytes}")

        failed = False
        notes = []
        for i in range(args.runs):
            for c in list(contenders):
                before = {k: len(v) for k, v in bench.values.items()}
                try:
                    c.run(i)
                except (RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error,
                        imaplib.IMAP4.error) as e:
                    # One broken contender (a mailfs under construction) must not
                    # cost the others' figures: report it and go on.
                    log(f"run {i + 1}/{args.runs} {c.name}: FAILED: {e}")
                    bench.skipped[c.name] = f"failed in run {i + 1}: " + str(e).split("\n")[0]
                    for k in list(bench.values):
                        if k.startswith(c.name + "."):
                            del bench.values[k]
                    contenders.remove(c)
                    failed = True
                    continue
                got = ", ".join(f"{k} {v[-1]:.3f}" for k, v in bench.values.items()
                                if len(v) > before.get(k, 0))
                log(f"run {i + 1}/{args.runs} {c.name}: {got}")
            try:
                end_round(ctx)
            except Exception as e:  # the server is not the corpus any more: stop
                log(f"run {i + 1}/{args.runs}: reverting the server changes FAILED: {e}")
                notes.append(f"**reverting the server changes after run {i + 1} failed "
                             f"({e}): later runs not made**")
                failed = True
                break
        dav_md = None
        metrics, ratios = METRICS, RATIOS
        if args.dav:
            servers = ["radicale", "xandikos"] if args.dav_server == "both" else [args.dav_server]
            dm, dr = dav_rows(servers, sum(dav_sizes(args.scale)))
            metrics, ratios = METRICS + dm, RATIOS[:-3] + dr + RATIOS[-3:]
            dav_md = run_dav(args, ctx, bench, log)
            failed = failed or "dav" in bench.skipped
        elapsed = time.monotonic() - t_start
        cpus, top = load.result()
        extra = [f"whole benchmark run: {elapsed:.0f} s (including corpus load and warm-up"
                 + (", and the DAV benchmark)" if args.dav else ")"),
                 f"other processes during the measurements: {describe_load(cpus, top)}"
                 + ("" if cpus <= 0.1 else " — **the machine was not idle: figures skewed**")
                 ] + notes
        md = report(bench, mach, ctx.stats, args.scale, args.runs, extra, metrics, ratios,
                    dav_md)
        print(md)
        if args.out:
            with open(args.out, "w") as f:
                f.write(md)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": mach, "scale": args.scale, "seed": args.seed,
                           "runs": args.runs, "messages": ctx.stats.messages,
                           "bytes": ctx.stats.bytes, "values": bench.values,
                           "skipped": bench.skipped, "seconds": elapsed,
                           "other_cpus": cpus, "other_top": top}, f, indent=1)
        status = 1 if failed else 0
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for mnt, p in list(_mounts.items()):
            unmount(mnt, p, timeout=10)
        for p in list(_children):
            _kill(p)
        if ctx.server is not None:
            try:
                ctx.server.stop()
            except Exception as e:  # keep cleaning up
                log(f"stopping dovecot: {e}")
        if ctx.dest is not None:
            ctx.dest.close()
        if args.keep:
            log(f"kept {ctx.tmp}")
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
