#!/usr/bin/python3
"""mailfs benchmark (DESIGN section 8): mailfs side by side with mbsync, a raw
pipelined IMAP fetch and the local write floor, in one run, on one corpus.

    /usr/bin/python3 tests/bench/bench.py [--scale 1] [--runs 3] [--mailfs BIN]
        [--only raw,floor,mbsync,mailfs] [--out FILE.md] [--json FILE]
        [--dest-fs auto|loop|tmpdir] [--wait-idle SECONDS] [--keep]

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
import json
import os
import platform
import re
import shutil
import signal
import socket
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


# Rows of the results table, in order. Contenders add values under these keys.
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
    Metric("headers.initial", "mailfs initial sync, headers mode (every folder)", "s"),
    Metric("headers.bytes", "mailfs headers mode: bytes received", "MB", "{:.1f}"),
    Metric("headers.rss", "mailfs headers mode: peak RSS", "MiB", "{:.1f}"),
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
    ("mailfs peak RSS", "mailfs.rss", None, "< 64 MiB", lambda v: v < 64, ""),
    ("headers mode / full mode, time", "headers.initial", "mailfs.initial", "≤ 0.2",
     lambda v: v <= 0.2, ""),
    ("headers mode / full mode, bytes received", "headers.bytes", "mailfs.bytes", "", None,
     "for context"),
    ("mbsync initial / write floor + sync", "mbsync.initial", "floor.sync",
     "", None, "for context"),
    ("mbsync initial / raw fetch", "mbsync.initial", "raw.time", "", None, "for context"),
    ("mailfs initial / raw fetch", "mailfs.initial", "raw.time", "", None, "for context"),
]

# Measurements of DESIGN section 8 that later issues add: each becomes a
# contender class below (setup, run(i) filling METRICS keys, ratios above).
LATER = [
    "resync after 100 new messages + 500 flag changes (mailfs vs mbsync)",
    "CalDAV/CardDAV initial and no-change sync vs vdirsyncer (needs corpus.generate_dav)",
    "reads through the mount: cat, grep -r, ls -l, find vs a native Maildir",
    "new-mail delivery latency in the mount (target ≤ 1 s)",
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
    folder into a fresh Maildir laid out like the server's."""
    name = "mbsync"

    def setup(self):
        if not shutil.which("mbsync"):
            return "mbsync not installed"
        c = self.ctx
        self.dest = os.path.join(c.dest.root, "mbsync")
        self.rc = os.path.join(c.tmp, "mbsyncrc")
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
        log = os.path.join(c.tmp, "mbsync.log")
        argv = ["mbsync", "-q", "-c", self.rc, "-a"]
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
        drop_dir(self.dest)


def bytes_received(log):
    """What mailfs says it received from the server in its last run."""
    n = 0
    for m in re.finditer(r"disconnected from .* \((\d+) bytes received\)", tail(log)):
        n = int(m.group(1))
    return n


class Mailfs(Contender):
    name = "mailfs"
    mode = "full"  # every folder whole: the comparison with mbsync

    def setup(self):
        b = self.bench.args.mailfs
        cands = [b] if b else [os.path.join(REPO, "build", "fs", "mailfs"),
                               os.path.join(REPO, "build", "mailfs"), shutil.which("mailfs")]
        self.bin = next((os.path.abspath(p) for p in cands if p and os.access(p, os.X_OK)),
                        None)
        if not self.bin:
            where = b or " or ".join(p for p in cands[:2])
            return (f"no mailfs binary at {where}: build it (meson setup build && "
                    f"ninja -C build) or pass --mailfs BIN")
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
        return None

    def run(self, i):
        c = self.ctx
        fresh_dir(self.data)
        log = os.path.join(c.tmp, f"mailfs-{self.name}.log")
        env = dict(os.environ, XDG_DATA_HOME=self.data,
                   XDG_CONFIG_HOME=os.path.join(c.tmp, "mailfs-config"))
        argv = [self.bin, "--config", self.cfg, "sync", ACCOUNT]
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
        self.verify(c)
        settle()
        wall, rc, rss, cpu = run_measured(argv, log, env=env, timeout=self.bench.args.timeout)
        if rc != 0:
            raise failure("mailfs resync", rc, log)
        self.bench.add("mailfs.nochange", wall)
        drop_dir(self.data)

    def verify(self, c):
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
        if (n, nbytes) != (c.stats.messages, c.stats.bytes):
            raise RuntimeError(f"mailfs stored {n} messages / {nbytes} bytes, the corpus "
                               f"has {c.stats.messages} / {c.stats.bytes} (the benchmark "
                               "measures full mode: every message whole)")


class MailfsHeaders(Mailfs):
    """The same sync with every mail folder in headers mode (sync_mode =
    headers; INBOX is full by default, so it is set through the config of
    every folder... INBOX stays full as DESIGN section 4 says)."""
    name = "headers"
    mode = "headers"

    def verify_headers(self, c):
        """Every message is in the store, whole or in part."""
        content = os.path.join(self.data, "mailfs", ACCOUNT, "content")
        n = sum(len(files) for _, _, files in os.walk(content))
        if n != c.stats.messages:
            raise RuntimeError(f"mailfs (headers) stored {n} messages, the corpus has "
                               f"{c.stats.messages}")


CONTENDERS = [RawFetch, WriteFloor, Mbsync, Mailfs, MailfsHeaders]


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


def report(bench, mach, stats, scale, runs, extra):
    """The results as Markdown (printed and written with --out)."""
    L = []
    L.append(f"## mailfs benchmark — {mach['date']}")
    L.append("")
    L.append(f"- corpus: {stats.messages:,} messages, {stats.bytes / 1e9:.3f} GB in "
             f"{len(stats.folders)} folders (--scale {scale:g}, seed {bench.args.seed})")
    L.append(f"- machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['memory_gib']} GiB, "
             f"Linux {mach['kernel']}, {mach['os']}, {mach['filesystem']}")
    L.append(f"- versions: Dovecot {mach['dovecot'].split(' (')[0]}, "
             f"{mach['mbsync']}, Python {mach['python']}")
    L.append(f"- destinations: {bench.dest_describe}")
    L.append(f"- method: median of {runs} runs (min: the best run; max for MB/s), "
             "contenders interleaved, fresh destination each run, sync(2) before each "
             "measurement, server caches warm for all (tests/bench/README.md)")
    for line in extra:
        L.append(f"- {line}")
    L.append("")
    head = ["measurement", "unit"] + [f"run {i + 1}" for i in range(runs)] + ["median", "min"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * 2 + "---:|" * (runs + 2))
    for m in METRICS:
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
        L.append(f"| {m.label} | {m.unit} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("| ratio (of medians) | value | DESIGN §8 target | |")
    L.append("|---|---:|---|---|")
    units = {m.key: m.unit for m in METRICS}
    for label, num, den, target, check, note in RATIOS:
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
            value = f"{v:.1f} {units[num]}" if den is None else f"{v:.2f}×"
            verdict = ("met" if check(v) else "**missed**") if check else ""
        if note:
            verdict = f"{verdict} ({note})" if verdict else note
        L.append(f"| {label} | {value} | {target} | {verdict} |")
    L.append("")
    for name, why in bench.skipped.items():
        L.append(f"- {name}: {why}" if why.startswith("failed") else f"- {name}: skipped — {why}")
    L.append("- not measured yet (later issues): " + "; ".join(LATER))
    return "\n".join(L) + "\n"


# --- main --------------------------------------------------------------------------------

class Context:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--scale", type=float, default=1,
                    help="corpus size in units of 10,000 messages (10 = 100,000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--mailfs", metavar="BIN", help="mailfs binary (default build/fs/mailfs)")
    ap.add_argument("--only", default="", metavar="LIST",
                    help="comma-separated subset of: " + ",".join(c.name for c in CONTENDERS))
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
        os.sync()
        size = (int(ctx.stats.bytes * 1.5) + 2**31) // 2**20 * 2**20
        ctx.dest = DestFs(ctx.tmp, args.dest_fs, size, log)
        bench.dest_describe = ctx.dest.describe

        contenders = []
        for cls in CONTENDERS:
            if only and cls.name not in only:
                continue
            c = cls(bench, ctx)
            why = c.setup()
            if why:
                bench.skipped[c.name] = why
                log(f"{c.name}: skipped — {why}")
            else:
                contenders.append(c)
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
        for i in range(args.runs):
            for c in list(contenders):
                before = {k: len(v) for k, v in bench.values.items()}
                try:
                    c.run(i)
                except (RuntimeError, OSError) as e:
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
        elapsed = time.monotonic() - t_start
        cpus, top = load.result()
        extra = [f"whole benchmark run: {elapsed:.0f} s (including corpus load and warm-up)",
                 f"other processes during the measurements: {describe_load(cpus, top)}"
                 + ("" if cpus <= 0.1 else " — **the machine was not idle: figures skewed**")]
        md = report(bench, mach, ctx.stats, args.scale, args.runs, extra)
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
