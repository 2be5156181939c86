#!/usr/bin/python3
"""A real Dovecot IMAP server for tests and benchmarks: started on a free
loopback port from a temporary directory, as a module (class Dovecot) or a CLI.

    /usr/bin/python3 tests/servers/dovecot.py start --dir D [--user alice:secret] [--ssl]
        [--hide CAP,CAP] [--port N]   -> writes D/server.json and prints it
    /usr/bin/python3 tests/servers/dovecot.py stop --dir D

Dovecot runs as root here but its mail processes run as nobody/nogroup (65534),
with homes inside the base directory owned by that user (DESIGN.md section 9),
so the base directory must be reachable by that user: make_basedir() gives one.
Mailboxes are Maildirs, LAYOUT=fs, '/' as the hierarchy separator: folder
Archive/2025 is HOME/Maildir/Archive/2025/{cur,new,tmp} and INBOX is
HOME/Maildir/INBOX (folder_dir() says where a folder lives). Names Dovecot
refuses here: any "." or ".." component, control characters, a leading "~",
and the Maildir names cur, new and tmp.

Startup takes about 0.04 s (0.1 s with TLS certificates to make); stop() ends
every process of the instance, also imap processes whose client is still
connected, as a crashed server would.
"""

import argparse
import base64
import datetime
import email.header
import email.utils
import hashlib
import imaplib
import json
import os
import re
import shutil
import signal
import socket
import ssl as ssl_mod
import stat
import subprocess
import sys
import tempfile
import time

DOVECOT = "/usr/sbin/dovecot"
IMAP_BINARY = "/usr/lib/dovecot/imap"
MAIL_UID = 65534  # nobody
MAIL_GID = 65534  # nogroup
# unix sockets live in base_dir; sun_path holds 107 bytes and Dovecot's longest
# socket name under base_dir is about 25 bytes.
MAX_BASE_DIR = 78

# Dovecot 2.3's compiled-in post-login capability list (CAPABILITY_STRING in
# src/imap/imap-common.h), used when it cannot be read from the binary.
DOVECOT_23_CAPABILITY = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
    "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL "
    "CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 "
    "CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS "
    "BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE")

# Extensions that mailfs uses when offered (DESIGN section 1): hide them all to
# test the paths for a bare IMAP4rev1 server.
ALL_EXTENSIONS = ("UIDPLUS", "MOVE", "IDLE", "LITERAL+", "ENABLE", "ESEARCH",
                  "CONDSTORE", "QRESYNC")

_default_caps = None


def quota_config(storage):
    """extra_config lines for a per-user storage quota (e.g. "200K"): an
    APPEND that would exceed it is refused with NO [OVERQUOTA]."""
    return ("mail_plugins = $mail_plugins quota",
            "plugin {",
            "  quota = count:User quota",
            "  quota_rule = *:storage=%s" % storage,
            "  quota_vsizes = yes",
            "}")


def default_capabilities():
    """Dovecot's default post-login capabilities, as a list, read from the
    installed imap binary (so a Dovecot upgrade is followed), else the 2.3
    list. Dovecot adds LITERAL+ and (with mailbox list indexes, its default)
    NOTIFY itself after login, but only when imap_capability is unset:
    Dovecot.capabilities() puts them back in an explicit list."""
    global _default_caps
    if _default_caps is None:
        caps = DOVECOT_23_CAPABILITY
        try:
            with open(IMAP_BINARY, "rb") as f:
                data = f.read()
            m = re.search(rb"IMAP4rev1 SASL-IR [A-Z0-9=+\- ]+", data)
            if m:
                caps = m.group(0).decode()
        except OSError:
            pass
        _default_caps = caps.split()
    return list(_default_caps)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- modified UTF-7 (RFC 3501 section 5.1.3) ----------------------------------

def imap_utf7_encode(name):
    """A Unicode mailbox name as IMAP modified UTF-7 (a str of ASCII)."""
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def imap_utf7_decode(name):
    """An IMAP modified UTF-7 mailbox name (str or bytes) as Unicode."""
    if isinstance(name, bytes):
        name = name.decode("ascii")
    out, i = [], 0
    while i < len(name):
        ch = name[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        j = name.index("-", i)
        if j == i + 1:
            out.append("&")
        else:
            b64 = name[i + 1:j].replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def quote(s):
    """An IMAP quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_arg(name):
    """A Unicode mailbox name as an imaplib argument (encoded and quoted)."""
    return quote(imap_utf7_encode(name))


# --- messages -------------------------------------------------------------------

_msg_counter = 0


def make_message(subject, date, body="Hello.\n", sender="Bob <bob@example.com>",
                 to="Alice <alice@example.com>", extra_headers=(), message_id=None):
    """An RFC 5322 message as bytes with CRLF line ends.

    subject: str (RFC 2047 encoded as UTF-8 when not ASCII), or bytes put in
    the header as they are (for raw, hostile or 8-bit subjects), or None for no
    Subject field. date: an aware datetime, a naive one (taken as UTC), a str
    used as it is, or None for no Date field. body: str or bytes; bare LF
    becomes CRLF. extra_headers: (name, value) pairs or "Name: value" strings.
    """
    global _msg_counter
    _msg_counter += 1
    lines = []
    if date is not None:
        if isinstance(date, datetime.datetime):
            if date.tzinfo is None:
                date = date.replace(tzinfo=datetime.timezone.utc)
            date = email.utils.format_datetime(date)
        lines.append(b"Date: " + date.encode())
    lines.append(b"From: " + sender.encode())
    lines.append(b"To: " + to.encode())
    if subject is not None:
        if isinstance(subject, bytes):
            lines.append(b"Subject: " + subject)
        else:
            try:
                subject.encode("ascii")
                enc = subject
            except UnicodeEncodeError:
                enc = email.header.Header(subject, "utf-8").encode()
            lines.append(b"Subject: " + enc.encode())
    if message_id is None:
        message_id = "<%d.%d.%d@test.mailfs>" % (os.getpid(), time.time_ns(), _msg_counter)
    lines.append(b"Message-ID: " + message_id.encode())
    lines.append(b"MIME-Version: 1.0")
    lines.append(b"Content-Type: text/plain; charset=utf-8")
    lines.append(b"Content-Transfer-Encoding: 8bit")
    for h in extra_headers:
        if isinstance(h, (tuple, list)):
            h = "%s: %s" % h
        lines.append(h.encode() if isinstance(h, str) else h)
    if isinstance(body, str):
        body = body.encode()
    body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _flags_arg(flags):
    if not flags:
        return None
    if isinstance(flags, str):
        flags = flags.split()
    return "(" + " ".join(flags) + ")"


def append(client, folder, msg_bytes, flags=(), date_time=None):
    """APPEND msg_bytes to folder (a Unicode name) with imaplib. flags: e.g.
    ("\\Seen", "$Forwarded"). date_time: the INTERNALDATE (datetime or epoch
    seconds), default now. Returns the new UID when the server says it
    (UIDPLUS), else None. Raises on failure."""
    if isinstance(date_time, datetime.datetime) and date_time.tzinfo is None:
        date_time = date_time.replace(tzinfo=datetime.timezone.utc)
    idate = imaplib.Time2Internaldate(date_time) if date_time is not None else None
    typ, data = client.append(mailbox_arg(folder), _flags_arg(flags), idate, msg_bytes)
    if typ != "OK":
        raise imaplib.IMAP4.error("APPEND to %r failed: %r" % (folder, data))
    m = re.search(rb"APPENDUID (\d+) (\d+)", data[0] or b"")
    return int(m.group(2)) if m else None


def append_many(host, port, user, password, folder, messages, flags=(), batch=1000):
    """APPEND many messages fast: MULTIAPPEND (RFC 3502) commands of `batch`
    messages each, with non-synchronising literals (LITERAL+), on one raw
    connection. 10,000 small messages take about 0.5 s on Dovecot, against
    17 s for one APPEND per message. Needs MULTIAPPEND and LITERAL+ (Dovecot's
    defaults: do not hide them on a server loaded this way). flags: for every
    message. Returns the list of new UIDs (from APPENDUID)."""
    sock = socket.create_connection((host, port))
    f = sock.makefile("rb")

    def expect_tagged(tag):
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise imaplib.IMAP4.error(line.decode(errors="replace"))
                return line

    uids = []
    try:
        f.readline()
        sock.sendall(b"a LOGIN " + quote(user).encode() + b" " + quote(password).encode() + b"\r\n")
        expect_tagged(b"a")
        fl = (b" " + _flags_arg(flags).encode()) if flags else b""
        mbox = mailbox_arg(folder).encode()
        messages = list(messages)
        for start in range(0, len(messages), batch):
            parts = [b"m%d APPEND %s" % (start, mbox)]
            for msg in messages[start:start + batch]:
                parts.append(b"%s {%d+}\r\n" % (fl, len(msg)))
                parts.append(msg)
            parts.append(b"\r\n")
            sock.sendall(b"".join(parts))
            line = expect_tagged(b"m%d" % start)
            m = re.search(rb"APPENDUID \d+ ([0-9:,]+)", line)
            if m:
                for r in m.group(1).split(b","):
                    lo, _, hi = r.partition(b":")
                    uids.extend(range(int(lo), int(hi or lo) + 1))
        sock.sendall(b"z LOGOUT\r\n")
        return uids
    finally:
        f.close()
        sock.close()


# --- processes ------------------------------------------------------------------

def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(pid):
    """pid and all its descendants that are alive now."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists("/proc/%d" % p):
            out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2] != "Z"
    except OSError:
        return False


def _dovecot_gid():
    import grp
    try:
        return grp.getgrnam("dovecot").gr_gid
    except KeyError:
        return 0


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def _make_traversable(path):
    """Let the mail user (nobody) walk down to path: add o+x to each ancestor
    that lacks it (only traverse, never read). Prefer a basedir from
    make_basedir(), which needs none of this."""
    path = os.path.abspath(path)
    parts = []
    while True:
        parts.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for p in reversed(parts):
        st = os.stat(p)
        if not st.st_mode & stat.S_IXOTH:
            if st.st_uid != os.geteuid():
                raise RuntimeError("%s is not searchable by uid %d and not ours to chmod"
                                   % (p, MAIL_UID))
            os.chmod(p, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def make_basedir(prefix="mailfs-dovecot-"):
    """A new directory for a server under /tmp that the mail user can reach
    (mode 0711) and with a short path (unix sockets). Use it rather than a
    directory below pytest's tmp_path: pytest makes /tmp/pytest-of-USER 0700
    again at the start of every session, which would lock a running
    server's mail processes out of their homes. The caller removes it."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o711)
    return d


class DovecotError(RuntimeError):
    pass


class Dovecot:
    """One Dovecot instance in basedir. Not started until start()."""

    host = "127.0.0.1"

    def __init__(self, basedir, users={"alice": "secret"}, ssl=False,
                 hide_capabilities=(), port=None, extra_config=()):
        """extra_config: lines added at the end of dovecot.conf, e.g. a
        quota (see QUOTA_CONFIG)."""
        self.basedir = os.path.abspath(str(basedir))
        self.extra_config = tuple(extra_config)
        self.users = dict(users)
        self.ssl = ssl
        self.hide_capabilities = tuple(c.upper() for c in hide_capabilities)
        self.port = port
        self.imaps_port = None
        self.ca_file = None
        self.conf = os.path.join(self.basedir, "dovecot.conf")
        self.log_path = os.path.join(self.basedir, "dovecot.log")
        self.out_path = os.path.join(self.basedir, "dovecot.out")
        self.home_root = os.path.join(self.basedir, "home")
        self.base_dir = None
        self._own_base_dir = False
        self._fixed_port = port is not None
        self.master_pid = None
        self._proc = None
        self.start_seconds = None

    # -- paths and setup

    def maildir(self, user="alice"):
        """The Maildir root of user (INBOX is its INBOX/ subdirectory)."""
        return os.path.join(self.home_root, user, "Maildir")

    def folder_dir(self, folder, user="alice"):
        """The Maildir (holding cur/ new/ tmp/) of a folder, by Unicode name."""
        if folder.upper() == "INBOX":
            folder = "INBOX"
        return os.path.join(self.maildir(user), imap_utf7_encode(folder))

    def capabilities(self):
        """The post-login capability list this server is configured with, or
        None for Dovecot's default."""
        if not self.hide_capabilities:
            return None
        caps = default_capabilities() + ["LITERAL+", "NOTIFY"]
        return [c for c in caps if c not in self.hide_capabilities]

    def _setup_dirs(self):
        os.makedirs(self.basedir, exist_ok=True)
        _make_traversable(self.basedir)
        for d in ("state",):
            os.makedirs(os.path.join(self.basedir, d), exist_ok=True)
        os.makedirs(self.home_root, exist_ok=True)
        os.chmod(self.home_root, 0o755)
        for user in self.users:
            home = os.path.join(self.home_root, user)
            if not os.path.isdir(home):
                os.makedirs(home)
            os.chown(home, MAIL_UID, MAIL_GID)
            os.chmod(home, 0o700)
        with open(os.path.join(self.basedir, "passwd"), "w") as f:
            for user, pw in self.users.items():
                if ":" in user or ":" in pw or "\n" in user + pw:
                    raise ValueError("user names and passwords may not hold ':' or newlines")
                f.write("%s:{PLAIN}%s:%d:%d::%s::\n"
                        % (user, pw, MAIL_UID, MAIL_GID, os.path.join(self.home_root, user)))
        # read by the auth process, which runs as the dovecot user
        os.chmod(os.path.join(self.basedir, "passwd"), 0o640)
        os.chown(os.path.join(self.basedir, "passwd"), 0, _dovecot_gid())
        run = os.path.join(self.basedir, "run")
        if self.base_dir is None:
            if len(run) <= MAX_BASE_DIR:
                self.base_dir = run
            else:
                self.base_dir = tempfile.mkdtemp(prefix="dovecot-")
                self._own_base_dir = True
                try:
                    os.symlink(self.base_dir, run)
                except FileExistsError:
                    pass
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)

    def _make_certs(self):
        d = os.path.join(self.basedir, "tls")
        ca, key, cert = (os.path.join(d, n) for n in ("ca.pem", "server.key", "server.pem"))
        self.ca_file = ca
        if os.path.exists(cert):
            return
        os.makedirs(d, exist_ok=True)

        def ossl(*args):
            subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
             "-subj", "/CN=mailfs test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n")
        ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "3650", "-extfile", "ext.cnf")
        os.chmod(key, 0o600)

    def _write_config(self):
        caps = self.capabilities()
        tls = os.path.join(self.basedir, "tls")
        lines = [
            "# generated by tests/servers/dovecot.py",
            "base_dir = %s" % self.base_dir,
            "state_dir = %s" % os.path.join(self.basedir, "state"),
            "instance_name = mailfs-test-%s" % hashlib.sha1(self.basedir.encode()).hexdigest()[:10],
            "log_path = %s" % self.log_path,
            "info_log_path = %s" % self.log_path,
            "protocols = imap",
            "listen = 127.0.0.1",
            "ssl = %s" % ("yes" if self.ssl else "no"),
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "auth_failure_delay = 0",
            "mail_location = maildir:~/Maildir:LAYOUT=fs:INBOX=~/Maildir/INBOX",
            "mail_fsync = never",
            "mail_max_userip_connections = 1000",
            "mailbox_idle_check_interval = 1 secs",
            "first_valid_uid = %d" % MAIL_UID,
            "first_valid_gid = %d" % MAIL_GID,
            "passdb {",
            "  driver = passwd-file",
            "  args = %s" % os.path.join(self.basedir, "passwd"),
            "}",
            "userdb {",
            "  driver = passwd-file",
            "  args = %s" % os.path.join(self.basedir, "passwd"),
            "}",
            "namespace inbox {",
            "  inbox = yes",
            "  separator = /",
            "  prefix =",
            "}",
            "service imap-login {",
            "  chroot =",
            "  inet_listener imap {",
            "    address = 127.0.0.1",
            "    port = %d" % self.port,
            "  }",
            "  inet_listener imaps {",
            "    address = 127.0.0.1",
            "    port = %d" % (self.imaps_port or 0),
            "    ssl = yes",
            "  }",
            "}",
            "service anvil {",
            "  chroot =",
            # auth (as user dovecot) then cannot reach anvil's penalty
            # socket and turns the auth penalty off: without this, every
            # failed login from 127.0.0.1 delays the next ones by 2-15 s
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
            "}",
            "service stats {",
            "  chroot =",
            "}",
        ]
        if caps is not None:
            # an explicit list replaces the defaults before and after login,
            # and then Dovecot adds no LITERAL+ of its own (it still accepts
            # non-synchronising literals; it just does not offer them)
            lines.append("imap_capability = %s" % " ".join(caps))
        lines += list(self.extra_config)
        if self.ssl:
            lines += ["ssl_cert = <%s" % os.path.join(tls, "server.pem"),
                      "ssl_key = <%s" % os.path.join(tls, "server.key")]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- lifecycle

    def start(self):
        """Write the config, start Dovecot and wait until it greets."""
        t0 = time.monotonic()
        if self.master_pid and _alive(self.master_pid):
            raise DovecotError("already running (pid %d)" % self.master_pid)
        self._setup_dirs()
        if self.ssl:
            self._make_certs()
        for attempt in range(20):
            if not self._fixed_port:
                self.port = free_port()
                if self.ssl:
                    self.imaps_port = free_port()
                    if self.imaps_port == self.port:
                        continue
            elif self.ssl and not self.imaps_port:
                self.imaps_port = free_port()
            self._write_config()
            offsets = [self._size(self.out_path), self._size(self.log_path)]
            try:
                os.unlink(os.path.join(self.base_dir, "master.pid"))
            except FileNotFoundError:
                pass
            # -F: no daemonising, so this process reaps the master; output to
            # a file, since the children keep the descriptors they are given
            with open(self.out_path, "ab") as out:
                self._proc = subprocess.Popen(
                    [DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                    stdout=out, stderr=out, close_fds=True, start_new_session=True)
            self.master_pid = self._proc.pid
            try:
                self._wait_greeting(self.port, 10)
                break
            except DovecotError:
                rc = self._proc.poll()
                if rc is None:
                    self.stop()
                    raise
                text = (self._read_from(self.out_path, offsets[0])
                        + self._read_from(self.log_path, offsets[1]))
                self.master_pid = self._proc = None
                if "Address already in use" in text and not self._fixed_port:
                    continue
                raise DovecotError("dovecot -F -c %s exited with %d:\n%s" % (self.conf, rc, text))
        else:
            raise DovecotError("no free port found")
        # a restart keeps the ports, so configs written for them stay valid
        self._fixed_port = True
        if self.ssl:
            self._wait_greeting(self.imaps_port, 10, tls=True)
        if self.hide_capabilities:
            self._check_hidden()
        self.start_seconds = time.monotonic() - t0

    def _wait_greeting(self, port, timeout, tls=False):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, port), timeout=2) as s:
                    if tls:
                        ctx = ssl_mod.create_default_context(cafile=self.ca_file)
                        s = ctx.wrap_socket(s, server_hostname=self.host)
                    data = s.recv(4096)
                    if data.startswith(b"* OK"):
                        return
                    last = data
            except OSError as e:
                last = e
            if self._proc is not None and self._proc.poll() is not None:
                break
            if self.master_pid and not _alive(self.master_pid):
                break
            time.sleep(0.01)
        raise DovecotError("no IMAP greeting on port %d (%r):\n%s"
                           % (port, last, self._tail(self.log_path)))

    def _check_hidden(self):
        c = self.client(next(iter(self.users)))
        try:
            pre = set(self._pre_login_caps())
            post = set(c.capabilities)
            typ, data = c.capability()
            post |= set(data[0].decode().upper().split())
        finally:
            c.logout()
        for cap in self.hide_capabilities:
            if cap in pre or cap in post:
                raise DovecotError("capability %s still advertised" % cap)

    def _pre_login_caps(self):
        c = imaplib.IMAP4(self.host, self.port)
        try:
            return [x.upper() for x in c.capabilities]
        finally:
            c.shutdown()

    def stop(self):
        """Stop Dovecot and wait until it and every child process are gone."""
        pid = self.master_pid
        if pid is None:
            try:
                with open(os.path.join(self.base_dir or os.path.join(self.basedir, "run"),
                                       "master.pid")) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                pid = None
        if pid and _alive(pid):
            tree = process_tree(pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            # Dovecot's master lingers about 1 s after its children are gone,
            # and does not wait for imap processes that still have a client:
            # give the children a moment to exit cleanly, then kill the rest
            # as a crashed server would be
            kids = [p for p in tree if p != pid and _comm(p) != "log"]
            self._wait_gone(kids, 0.5)
            rest = [p for p in process_tree(pid) + tree if _alive(p)]
            for p in rest:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._wait_gone(rest, 10)
            if self._proc is not None:
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            left = [p for p in tree if _alive(p)]
            if left:
                raise DovecotError("dovecot processes left: %r" % left)
        self.master_pid = None
        self._proc = None
        if self._own_base_dir and self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            try:
                os.unlink(os.path.join(self.basedir, "run"))
            except OSError:
                pass
            self.base_dir = None
            self._own_base_dir = False

    @staticmethod
    def _wait_gone(pids, timeout):
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in pids):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def running(self):
        return bool(self.master_pid and _alive(self.master_pid))

    def pids(self):
        """The master and its children, now."""
        return process_tree(self.master_pid) if self.master_pid else []

    # -- clients

    def client(self, user="alice", password=None, tls=None):
        """A new imaplib client, logged in. tls: None plain on self.port,
        "starttls" on self.port, "imaps" on self.imaps_port (both verify
        against ca_file)."""
        if password is None:
            password = self.users[user]
        if tls == "imaps":
            ctx = ssl_mod.create_default_context(cafile=self.ca_file)
            c = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=ctx)
        else:
            c = imaplib.IMAP4(self.host, self.port)
            if tls == "starttls":
                c.starttls(ssl_mod.create_default_context(cafile=self.ca_file))
        try:
            c.login(user, password)
        except Exception:
            c.shutdown()
            raise
        return c

    def append_many(self, folder, messages, flags=(), user="alice", batch=1000):
        """Fast bulk APPEND (see the module function append_many)."""
        return append_many(self.host, self.port, user, self.users[user], folder,
                           messages, flags, batch)

    def info(self):
        return {"host": self.host, "port": self.port, "imaps_port": self.imaps_port,
                "ca_file": self.ca_file, "users": self.users,
                "hide_capabilities": list(self.hide_capabilities),
                "basedir": self.basedir, "conf": self.conf, "log": self.log_path,
                "maildirs": {u: self.maildir(u) for u in self.users}}

    @staticmethod
    def _size(path):
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    @staticmethod
    def _read_from(path, offset):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def _tail(path, n=4000):
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log(self):
        return self._tail(self.log_path, 1 << 20)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# --- server-side helpers on an imaplib client ------------------------------------

def list_folders(client):
    """Unicode names of every mailbox."""
    typ, data = client.list('""', '"*"')
    out = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # name sent as a literal
            out.append(imap_utf7_decode(item[1]))
            continue
        m = re.match(rb'\((?P<flags>[^)]*)\) (?P<sep>"[^"]*"|NIL) (?P<name>.*)$', item)
        name = m.group("name")
        if name.startswith(b'"'):
            name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
        out.append(imap_utf7_decode(name))
    return out


def fetch_all(client, folder):
    """{uid: (flags tuple, BODY[] bytes)} of a folder, read-only (EXAMINE)."""
    typ, data = client.select(mailbox_arg(folder), readonly=True)
    if typ != "OK":
        raise imaplib.IMAP4.error("EXAMINE %r: %r" % (folder, data))
    if int(data[0]) == 0:
        return {}
    typ, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0]
        uid = int(re.search(rb"UID (\d+)", head).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
        out[uid] = (tuple(flags), item[1])
    return out


def count(client, folder):
    """Messages in folder now (NOOP first: STATUS of the selected mailbox
    answers from the session's view)."""
    client.noop()
    typ, data = client.status(mailbox_arg(folder), "(MESSAGES)")
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def server_dump(client):
    """{folder: sorted list of (flags, bytes)}: everything on the server."""
    return {f: sorted((tuple(sorted(fl)), b) for fl, b in fetch_all(client, f).values())
            for f in list_folders(client)}


# --- CLI ----------------------------------------------------------------------------

def _cli(argv):
    ap = argparse.ArgumentParser(prog="dovecot.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a server in DIR and write DIR/server.json")
    st.add_argument("--dir", required=True)
    st.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    st.add_argument("--ssl", action="store_true")
    st.add_argument("--hide", default="", metavar="CAP,CAP",
                    help="capabilities to hide (e.g. CONDSTORE,QRESYNC or 'all')")
    st.add_argument("--port", type=int)
    sp = sub.add_parser("stop", help="stop the server in DIR")
    sp.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    d = os.path.abspath(a.dir)
    state = os.path.join(d, "server.json")
    if a.cmd == "start":
        users = dict(u.split(":", 1) for u in a.user) or {"alice": "secret"}
        hide = ALL_EXTENSIONS if a.hide == "all" else tuple(h for h in a.hide.split(",") if h)
        srv = Dovecot(d, users=users, ssl=a.ssl, hide_capabilities=hide, port=a.port)
        srv.start()
        info = srv.info()
        info["master_pid"] = srv.master_pid
        info["base_dir"] = srv.base_dir
        info["own_base_dir"] = srv._own_base_dir
        with open(state, "w") as f:
            json.dump(info, f, indent=1)
        print(json.dumps(info, indent=1))
        return 0
    try:
        with open(state) as f:
            info = json.load(f)
    except OSError as e:
        print("dovecot.py: no server in %s (%s)" % (d, e), file=sys.stderr)
        return 1
    srv = Dovecot(d, users=info["users"])
    srv.master_pid = info.get("master_pid")
    srv.base_dir = info.get("base_dir")
    srv._own_base_dir = info.get("own_base_dir", False)
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
