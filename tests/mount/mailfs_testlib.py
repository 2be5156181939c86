"""Helpers for the mount tests: running the mailfs binary, mounting and
unmounting it, polling, walking the tree, and checking names. The fixtures
in conftest.py are built from these; tests import the plain functions.

Contract of the binary (env MAILFS_BIN, default <repo>/build/fs/mailfs):
    mailfs [--config FILE] ACCOUNT MOUNTPOINT [-f] [-o opt,...]
    mailfs [--config FILE] sync ACCOUNT|MOUNTPOINT [FOLDER]
    mailfs --help | --version
"""

import datetime
import email.utils
import hashlib
import os
import pathlib
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "servers"))
import dovecot  # noqa: E402,F401  (re-exported for the tests)
ALL_EXTENSIONS = dovecot.ALL_EXTENSIONS

MAILFS_BIN = os.environ.get("MAILFS_BIN", os.path.join(REPO, "build", "fs", "mailfs"))
# A sanitizer build (ASan+UBSan) is several times slower and uses far more
# memory: timeouts that are not part of the contract are scaled by SLOW.
ASAN = os.environ.get("MAILFS_ASAN") == "1"
SLOW = 3 if ASAN else 1
POLL = 1  # the poll interval written into test configs, seconds
ACCOUNT = "test"

# Output of the daemon that fails a test whatever it was doing.
BAD_OUTPUT = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
              "Segmentation fault", "Assertion")

# Message names: "YYYY-MM-DD HH.MM Subject.eml" (TZ=UTC in the tests).
NAME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d\.\d\d .+\.eml$")
RESERVED = ("Calendar", "Tasks", "Notes", "Contacts", "Conflicts")
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                    "\u2066\u2067\u2068\u2069")


class Timeout(AssertionError):
    pass


def wait_until(predicate, timeout, interval=0.05, what=None):
    """Call predicate until it returns something true; return that. Raise
    Timeout (an AssertionError) after timeout seconds, naming `what` (or the
    predicate) and the last value or exception."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = predicate()
            if v:
                return v
            last = v
        except (OSError, AssertionError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise Timeout("not true within %.1f s: %s (last: %r)"
                          % (timeout, what or getattr(predicate, "__name__", predicate), last))
        time.sleep(interval)


def bad_output(text):
    """The lines of daemon output that mean a crash or a sanitizer report."""
    return [line for line in text.splitlines() if any(b in line for b in BAD_OUTPUT)]


def expected_name(subject, date, dup=1):
    """The file name mailfs gives a message with a plain (already safe) subject
    and an aware datetime, in UTC: "YYYY-MM-DD HH.MM Subject.eml", with
    " (n)" before the extension for the n-th duplicate."""
    d = date.astimezone(datetime.timezone.utc)
    base = "%s %s" % (d.strftime("%Y-%m-%d %H.%M"), subject)
    return base + (".eml" if dup == 1 else " (%d).eml" % dup)


def date_of(msg_bytes):
    """The Date header of a message as epoch seconds, or None."""
    m = re.search(rb"^Date:[ \t]*(.*(?:\r\n[ \t].*)*)\r\n", msg_bytes, re.M | re.I)
    if not m:
        return None
    d = email.utils.parsedate_to_datetime(m.group(1).decode("latin-1"))
    return int(d.timestamp())


def flags_text_to_set(text):
    if isinstance(text, bytes):
        text = text.decode()
    return set(text.split())


def server_flags_to_set(flags):
    """IMAP flags as user.mail.flags shows them: system flags lowercase without
    the backslash, keywords as they are; \\Recent (per session) left out."""
    out = set()
    for f in flags:
        if f.lower() == "\\recent":
            continue
        out.add(f[1:].lower() if f.startswith("\\") else f)
    return out


def check_name(name, is_dir):
    """Assert that one directory entry name is safe."""
    raw = name.encode("utf-8", "surrogateescape")
    assert len(raw) <= 255, "name longer than 255 bytes: %r" % name
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError("name is not valid UTF-8: %r" % raw)
    assert text not in (".", ".."), name
    assert "/" not in text and "\0" not in text, name
    for ch in text:
        assert unicodedata.category(ch) != "Cc", "control character in %r" % text
        assert ch not in BIDI_CONTROLS, "bidi control U+%04X in %r" % (ord(ch), text)
    assert text == text.strip(), "leading or trailing white space in %r" % text
    if not is_dir:
        assert NAME_RE.match(text), "file name not 'YYYY-MM-DD HH.MM Subject.eml': %r" % text


def walk(root):
    """{relative path: lstat} of everything below root (not root itself)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def tree_files(root):
    """{relative path: bytes} of every regular file below root."""
    out = {}
    for rel, st in walk(root).items():
        if stat.S_ISREG(st.st_mode):
            with open(os.path.join(root, rel), "rb") as f:
                out[rel] = f.read()
    return out


def tree_identity(root):
    """{relative path: (inode, sha256 of content or None for dirs)}: what must
    not change across remounts and syncs when nothing changed on the server."""
    out = {}
    for rel, st in walk(root).items():
        h = None
        if stat.S_ISREG(st.st_mode):
            with open(os.path.join(root, rel), "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
        out[rel] = (st.st_ino, h)
    return out


def snapshot(root, exclude=()):
    """{relative path: (type, size, mtime_ns, sha256)} of a directory tree on
    the local disk, skipping the given absolute paths (and what is below)."""
    exclude = [os.path.abspath(e) for e in exclude]
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames
                       if os.path.abspath(os.path.join(dirpath, d)) not in exclude]
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if os.path.abspath(p) in exclude:
                continue
            st = os.lstat(p)
            h = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (stat.S_IFMT(st.st_mode), st.st_size,
                                            st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0, h)
    return out


def vm_hwm_kib(pid):
    """Peak resident set size of a process (VmHWM), KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


def _unescape_mountinfo(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mountinfo():
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return [line.split() for line in f]


def is_mounted(path):
    """True when path is a mount point, from /proc/self/mountinfo (never
    touches the file system, so a hung daemon cannot block it)."""
    path = os.path.abspath(path)
    return any(_unescape_mountinfo(parts[4]) == path for parts in _mountinfo())


def fuse_abort(path):
    """Abort the FUSE connection of a mount (blocked calls then fail with
    ENOTCONN), through /sys/fs/fuse/connections. Best effort."""
    path = os.path.abspath(path)
    try:
        for parts in _mountinfo():
            if _unescape_mountinfo(parts[4]) == path:
                minor = parts[2].split(":")[1]
                with open("/sys/fs/fuse/connections/%s/abort" % minor, "w") as a:
                    a.write("1")
                return True
    except OSError:
        pass
    return False


class TcpRecorder:
    """A TCP proxy on a free loopback port that forwards to (host, port) and
    records every byte the client sent, to check what went over the wire."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.sent = bytearray()
        self.streams = []  # what the client sent, one bytearray per connection
        self.connect_errors = []  # why connections to the target failed
        self.lock = threading.Lock()
        self.threads = []
        self.closing = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target)
            except OSError as e:
                self.connect_errors.append(e)
                c.close()
                continue
            with self.lock:
                stream = bytearray()
                self.streams.append(stream)
            for a, b, rec in ((c, s, stream), (s, c, None)):
                t = threading.Thread(target=self._pump, args=(a, b, rec), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    with self.lock:
                        self.sent += data
                        record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def mark(self):
        """A position in what was recorded so far (for since())."""
        with self.lock:
            return [len(x) for x in self.streams]

    def since(self, mark=None):
        """[bytes] the client sent on each connection after mark (all
        when mark is None); connections opened later are included whole."""
        mark = mark or []
        with self.lock:
            return [bytes(x[mark[i]:] if i < len(mark) else x)
                    for i, x in enumerate(self.streams)]

    def close(self):
        self.closing = True
        self.sock.close()


class Mount:
    """One running `mailfs ACCOUNT MOUNTPOINT -f`."""

    def __init__(self, proc, path, stderr_path, account, expect_rc=0):
        self.proc = proc
        self.pid = proc.pid
        self.path = path
        self.stderr_path = stderr_path
        self.account = account
        self.expect_rc = expect_rc
        self.unmounted = False

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __truediv__(self, rel):
        return pathlib.Path(self.path, rel)

    def unmount(self, timeout=10):
        """fusermount3 -u, then wait for the daemon to exit. Returns its exit
        status. Raises AssertionError when it does not go away."""
        errors = []
        if is_mounted(self.path):
            r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True,
                               text=True, timeout=30)
            if r.returncode != 0:
                # busy (a file left open?): abort the connection so the daemon
                # ends, and detach the mount point
                errors.append("fusermount3 -u failed: %s" % r.stderr.strip())
                fuse_abort(self.path)
                subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True,
                               timeout=30)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
            errors.append("mailfs did not exit within %d s after unmount; killed" % (timeout * SLOW))
        self.unmounted = True
        if is_mounted(self.path):
            fuse_abort(self.path)
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True, timeout=30)
            errors.append("%s still mounted after the daemon exited" % self.path)
        if errors:
            raise AssertionError("; ".join(errors) + "\n--- mailfs stderr ---\n" + self.stderr())
        return rc

    def kill(self):
        """SIGKILL the daemon and clean the mount up (a crash)."""
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        if is_mounted(self.path):
            fuse_abort(self.path)
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True, timeout=30)
        self.unmounted = True


# --- server content --------------------------------------------------------------

UTC = datetime.timezone.utc


def dt(*args):
    """An aware UTC datetime."""
    return datetime.datetime(*args, tzinfo=UTC)


def folder_dir(folder):
    """The directory (relative to the mount) of a server folder with a plain
    name: INBOX is Inbox, the hierarchy is kept, and a top-level name that
    mailfs reserves gets " (mail)" appended."""
    parts = folder.split("/")
    if parts[0].upper() == "INBOX":
        parts[0] = "Inbox"
    elif parts[0] in RESERVED:
        parts[0] += " (mail)"
    return "/".join(parts)


def create_folder(client, folder):
    typ, data = client.create(dovecot.mailbox_arg(folder))
    assert typ == "OK", "CREATE %r: %r" % (folder, data)


def populate_basic(client):
    """A small account: INBOX, Archive, Archive/2025, Sent and Entwürfe (made
    as Entw&APw-rfe), with flags. Returns {relative path: bytes} expected in
    the mount."""
    client.select("INBOX")  # Dovecot makes INBOX on first use
    for f in ("Archive", "Archive/2025", "Sent"):
        create_folder(client, f)
    assert client.create("Entw&APw-rfe")[0] == "OK"
    spec = [
        ("INBOX", "Quarterly report", dt(2026, 11, 24, 10, 0), ("\\Seen",)),
        ("INBOX", "Lunch?", dt(2026, 11, 25, 12, 30, 15), ()),
        ("INBOX", "Grüße aus Köln", dt(2026, 1, 2, 3, 4), ("\\Flagged", "$Forwarded")),
        ("Archive", "Old thread", dt(2019, 5, 6, 7, 8), ("\\Seen", "\\Answered")),
        ("Archive/2025", "Invoice 2025-001", dt(2025, 2, 3, 4, 5), ("\\Seen",)),
        ("Archive/2025", "Invoice 2025-002", dt(2025, 3, 3, 4, 5), ()),
        ("Sent", "Re: Lunch?", dt(2026, 11, 25, 12, 45), ("\\Seen",)),
        ("Entwürfe", "Entwurf: Angebot", dt(2026, 6, 7, 8, 9), ("\\Draft",)),
    ]
    expected = {}
    for i, (folder, subject, date, flags) in enumerate(spec):
        body = "Message %d in %s.\nUNIQUE-TOKEN-%d\n" % (i, folder, i)
        msg = dovecot.make_message(subject, date, body)
        dovecot.append(client, folder, msg, flags=flags, date_time=date)
        expected[folder_dir(folder) + "/" + expected_name(subject, date)] = msg
    return expected


def message_files(root):
    """{relative path: bytes} of the .eml files below root (leaves out the
    local-only Conflicts/ and any other non-mail top-level tree)."""
    files = tree_files(root)
    return {k: v for k, v in files.items() if k.split("/")[0] not in RESERVED}


def server_messages(client):
    """{folder: sorted list of BODY[]} of every folder on the server."""
    return {f: sorted(b for _, b in dovecot.fetch_all(client, f).values())
            for f in dovecot.list_folders(client)}


def server_state(client):
    """Everything on the server that a read-only mailfs must not change:
    {folder: sorted [(flags without \\Recent, BODY[])]}."""
    out = {}
    for f in dovecot.list_folders(client):
        out[f] = sorted((tuple(sorted(x for x in fl if x != "\\Recent")), b)
                        for fl, b in dovecot.fetch_all(client, f).values())
    return out


def find_by_content(files, body):
    """The paths in {path: bytes} whose content is body."""
    return [p for p, b in files.items() if b == body]


# --- writes through the mount --------------------------------------------------------

# IMAP commands that change what a server holds (UID variants included).
CHANGING_COMMANDS = ("APPEND", "STORE", "EXPUNGE", "MOVE", "COPY", "CREATE", "DELETE",
                     "RENAME")
_COMMAND_RE = re.compile(rb"^([A-Za-z0-9.+_-]+) (UID )?([A-Za-z]+)\b(.*)$", re.I)
_LITERAL_RE = re.compile(rb"\{(\d+)\+?\}$")


def crlf(data):
    """data with every bare LF made CRLF (what Dovecot stores)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def imap_commands(stream):
    """The commands in what an IMAP client sent on one connection, as
    (tag, name, first line): name upper case, "UID FETCH" for UID commands.
    Literal payloads are skipped; lines that are not commands (IDLE's DONE,
    SASL continuations) are left out. The stream must start at a command
    (take marks while the client is idle)."""
    out = []
    i = 0
    n = len(stream)
    while i < n:
        j = stream.find(b"\r\n", i)
        if j < 0:
            j = n
        line = bytes(stream[i:j])
        i = j + 2
        first = line
        # a command may continue after literals: {N}CRLF <N bytes> rest CRLF
        while True:
            lit = _LITERAL_RE.search(line)
            if not lit:
                break
            i += int(lit.group(1))
            j = stream.find(b"\r\n", i)
            if j < 0:
                j = n
            line = bytes(stream[i:j])
            i = j + 2
        m = _COMMAND_RE.match(first)
        if not m:
            continue
        name = m.group(3).upper().decode()
        if m.group(2):
            name = "UID " + name
        out.append((m.group(1).decode("latin-1"), name, first.decode("latin-1")))
    return out


def changing_commands(streams):
    """The first lines of the commands in streams (one bytes per connection)
    that change the server: APPEND, (UID) STORE/EXPUNGE/MOVE/COPY, CREATE,
    DELETE, RENAME, and a FETCH of BODY[...] without PEEK (it sets \\Seen)."""
    if isinstance(streams, (bytes, bytearray)):
        streams = [streams]
    out = []
    for s in streams:
        for tag, name, line in imap_commands(s):
            verb = name.split()[-1]
            if verb in CHANGING_COMMANDS:
                out.append(line)
            elif verb == "FETCH" and re.search(r"(?i)\bBODY\[", line) and \
                    not re.search(r"(?i)BODY\.PEEK", line):
                out.append(line)
    return out


def xattr(path, name):
    """An extended attribute of a file in the mount, as text."""
    return os.getxattr(str(path), name).decode("utf-8", "surrogateescape")


def folder_bodies(client, folder):
    """Sorted BODY[] of every message in a server folder ([] when the folder
    does not exist)."""
    if folder not in dovecot.list_folders(client):
        return []
    return sorted(b for _, b in dovecot.fetch_all(client, folder).values())


def folder_flags(client, folder):
    """{BODY[]: flags as user.mail.flags shows them} of a server folder."""
    return {b: server_flags_to_set(fl) for fl, b in dovecot.fetch_all(client, folder).values()}


def wait_server(client, folder, bodies, timeout, what=None, mount=None):
    """Wait until the server folder holds exactly `bodies` (any order, each
    as often as listed); with mount (a Mount), stop early when its daemon
    exits."""
    want = sorted(bodies)
    pred = lambda: folder_bodies(client, folder) == want  # noqa: E731
    if mount is not None:
        pred = while_alive(mount, pred)
    wait_until(pred, timeout, interval=0.1,
               what=what or "server folder %s holds the expected messages" % folder)


class DaemonDied(Exception):
    """The mailfs daemon exited while a test waited on it (not an OSError,
    so wait_until stops at once)."""


def while_alive(m, predicate):
    """predicate, raising DaemonDied as soon as the daemon of Mount m has
    exited (a crash shows at once instead of at the end of a timeout)."""
    def check():
        if m.proc.poll() is not None:
            raise DaemonDied("mailfs exited with %r:\n%s" % (m.proc.returncode,
                                                              m.stderr()[-3000:]))
        return predicate()
    return check


class HoldingProxy:
    """A TCP proxy to (host, port) that stops passing the server's answers
    to the client once the client has sent a whole command matching
    `pattern` (a bytes regex on the command's first line, literals
    included): the server carries the command out, the client never hears
    the result -- the window between "sent" and "recorded" that a crash can
    hit. `held` is set when that happened."""

    def __init__(self, host, port, pattern):
        self.target = (host, port)
        self.pattern = re.compile(pattern)
        self.held = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            self.conns += [c, s]
            threading.Thread(target=self._client, args=(c, s), daemon=True).start()
            threading.Thread(target=self._server, args=(s, c), daemon=True).start()

    def _client(self, src, dst):
        buf = b""
        pending = None  # (matched, bytes of literal still to pass)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                # follow the command structure to see where a command ends
                # (before passing the bytes on, so that no answer to the
                # matching command can slip through)
                while True:
                    if pending and pending[1] > 0:
                        take = min(pending[1], len(buf))
                        buf = buf[take:]
                        pending = (pending[0], pending[1] - take)
                        if pending[1] > 0:
                            break
                    i = buf.find(b"\r\n")
                    if i < 0:
                        break
                    line, buf = buf[:i], buf[i + 2:]
                    matched = (pending[0] if pending else False) or bool(
                        self.pattern.search(line))
                    lit = re.search(rb"\{(\d+)\+?\}$", line)
                    if lit:
                        pending = (matched, int(lit.group(1)))
                        continue
                    pending = None
                    if matched:
                        self.held.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src, dst)

    def _server(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.held.is_set():
                    continue  # swallowed: the client never hears it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src, dst)

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self._close(*self.conns)


# --- sync modes, offline mode, faults (issues 5 and 6) -------------------------------

def message_id(msg):
    """The Message-ID of a message (bytes), or None."""
    m = re.search(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", msg, re.M | re.I)
    return m.group(1).decode("latin-1") if m else None


def server_message_ids(client, folder):
    """The Message-IDs of every message in a server folder, repeats kept
    (sorted), [] when the folder does not exist."""
    if folder not in dovecot.list_folders(client):
        return []
    typ, data = client.select(dovecot.mailbox_arg(folder), readonly=True)
    assert typ == "OK", data
    if int(data[0]) == 0:
        return []
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    out = []
    for item in data:
        if isinstance(item, tuple):
            out.append(message_id(item[1]))
    return sorted(out, key=str)


def server_fetch(client, folder, uid, item):
    """One FETCH item of one message, read-only: the bytes of a BODY[...]
    section (item like "BODY.PEEK[1.1]"), or the int of a number item
    ("RFC822.SIZE")."""
    typ, data = client.select(dovecot.mailbox_arg(folder), readonly=True)
    assert typ == "OK", data
    typ, data = client.uid("FETCH", str(uid), "(%s)" % item)
    assert typ == "OK" and data and data[0] is not None, (item, data)
    if isinstance(data[0], tuple):
        return data[0][1]
    name = item.upper()
    m = re.search(rb"%s (\d+)" % re.escape(name.encode()), data[0])
    assert m, (item, data)
    return int(m.group(1))


def server_uid_by_mid(client, folder):
    """{Message-ID: UID} of a server folder."""
    typ, data = client.select(dovecot.mailbox_arg(folder), readonly=True)
    assert typ == "OK", data
    if int(data[0]) == 0:
        return {}
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out[message_id(item[1])] = uid
    return out


def setxattr_errno(path, name, value):
    """The errno of setting an attribute (None when it succeeds)."""
    if isinstance(value, str):
        value = value.encode()
    try:
        os.setxattr(str(path), name, value)
    except OSError as e:
        return e.errno
    return None


def timed(fn, *args, **kw):
    """(seconds, result) of fn(*args, **kw)."""
    t = time.monotonic()
    r = fn(*args, **kw)
    return time.monotonic() - t, r


def cpu_seconds(pid):
    """User + system CPU time a process has used, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _b64_lines(data):
    import base64
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def _noise(n, seed):
    """n bytes that do not compress (an attachment's content)."""
    out = bytearray()
    h = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def _head(subject, date, content_type, extra=()):
    d = email.utils.format_datetime(date)
    global _mime_counter
    _mime_counter += 1
    lines = ["Date: " + d, "From: Bob <bob@example.com>", "To: Alice <alice@example.com>",
             "Subject: " + subject,
             "Message-ID: <mime.%d.%d.%d@test.mailfs>" % (os.getpid(), time.time_ns(),
                                                         _mime_counter),
             "MIME-Version: 1.0", "Content-Type: " + content_type]
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_mime_counter = 0


def mime_mixed(subject, date, attach_size=300_000, filename="report.pdf", text=None):
    """multipart/mixed: a multipart/alternative (text/plain + text/html)
    and an application/pdf attachment of attach_size bytes (base64)."""
    text = text or ("Hello Alice,\r\nthe report is attached.\r\nPLAIN-TOKEN %s\r\n" % subject)
    body = (b"This is a multi-part message in MIME format.\r\n"
            b"--outer=_1\r\n"
            b"Content-Type: multipart/alternative; boundary=\"inner=_2\"\r\n\r\n"
            b"--inner=_2\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode() +
            b"\r\n--inner=_2\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b"<html><body><p>Hello Alice, the report is attached.</p></body></html>\r\n"
            b"--inner=_2--\r\n"
            b"--outer=_1\r\n"
            b"Content-Type: application/pdf; name=\"" + filename.encode() + b"\"\r\n"
            b"Content-Disposition: attachment; filename=\"" + filename.encode() + b"\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            _b64_lines(_noise(attach_size, subject)) + b"\r\n"
            b"--outer=_1--\r\n")
    return _head(subject, date, 'multipart/mixed; boundary="outer=_1"') + body


def mime_alternative(subject, date, html_size=40_000):
    """multipart/alternative: a short text/plain and a large text/html."""
    html = b"<html><body>" + b"<p>Lorem ipsum dolor sit amet.</p>\r\n" * (html_size // 36) + \
        b"</body></html>"
    body = (b"--alt=_3\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"The plain version of " + subject.encode() + b".\r\n"
            b"--alt=_3\r\n"
            b"Content-Type: text/html; charset=us-ascii\r\n\r\n" + html + b"\r\n"
            b"--alt=_3--\r\n")
    return _head(subject, date, 'multipart/alternative; boundary="alt=_3"') + body


def mime_single_pdf(subject, date, size=100_000, filename="scan.pdf"):
    """A single-part message: an application/pdf, base64."""
    return _head(subject, date, 'application/pdf; name="%s"' % filename,
                 ("Content-Disposition: attachment; filename=\"%s\"" % filename,
                  "Content-Transfer-Encoding: base64")) + \
        _b64_lines(_noise(size, subject)) + b"\r\n"


def mime_html_attachment(subject, date, attach_size=50_000, filename="photos.zip"):
    """multipart/mixed: text/html only (no plain text) and a zip attachment."""
    body = (b"--mix=_4\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b"<html><body><p>Only HTML here: " + subject.encode() + b"</p></body></html>\r\n"
            b"--mix=_4\r\n"
            b"Content-Type: application/zip; name=\"" + filename.encode() + b"\"\r\n"
            b"Content-Disposition: attachment; filename=\"" + filename.encode() + b"\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            _b64_lines(_noise(attach_size, subject)) + b"\r\n"
            b"--mix=_4--\r\n")
    return _head(subject, date, 'multipart/mixed; boundary="mix=_4"') + body


def mime_signed(subject, date, text_size=30_000):
    """multipart/signed (PGP): a large text/plain and its signature."""
    text = (b"Signed text line of " + subject.encode() + b".\r\n") * (text_size // 40)
    body = (b"--sig=_5\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text +
            b"\r\n--sig=_5\r\n"
            b"Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n"
            b"Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"
            b"-----BEGIN PGP SIGNATURE-----\r\n\r\niQEzBAEBCAAdFiEE\r\n"
            b"-----END PGP SIGNATURE-----\r\n"
            b"--sig=_5--\r\n")
    return _head(subject, date, 'multipart/signed; micalg=pgp-sha256; '
                 'protocol="application/pgp-signature"; boundary="sig=_5"') + body


_APPEND_RE = re.compile(rb'^\S+ APPEND ("(?:[^"\\]|\\.)*"|[^ ]+) .*\{(\d+)\+?\}$', re.I)


def appends(stream):
    """[(mailbox as sent, message bytes)] of every APPEND in what an IMAP
    client sent on one connection, in order (MULTIAPPEND: the first
    message of each command)."""
    out = []
    i, n = 0, len(stream)
    while i < n:
        j = stream.find(b"\r\n", i)
        if j < 0:
            break
        line = bytes(stream[i:j])
        i = j + 2
        m = _APPEND_RE.match(line)
        lit = _LITERAL_RE.search(line)
        if m:
            size = int(m.group(2))
            out.append((m.group(1).decode("latin-1").strip('"'), bytes(stream[i:i + size])))
        if lit:
            # skip the literal and whatever follows it on the command line
            i += int(lit.group(1))
    return out
