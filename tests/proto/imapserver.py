"""A scripted IMAP4rev1 server for protocol tests: plain TCP on a free
loopback port, one thread per connection, an in-memory model of the account,
and hooks that let a test rewrite or replace any answer, inject raw bytes,
cut the connection or stall. Real servers refuse to hold what these tests
need (folders named "..", control characters, NUL bytes, lying sizes), and
never answer with garbage on purpose; this one does what it is told.

    srv = ImapServer(caps=("IDLE", "CONDSTORE"))        # post-login capabilities
    srv.start()
    srv.add_folder("Archive")                            # INBOX always exists
    uid = srv.append("INBOX", msg_bytes, flags=("\\Seen",))
    srv.on("LIST", lambda cmd: cmd.default().replace(b"Archive", b".."))
    srv.on("UID FETCH", hook, times=1)                   # one-shot
    ...
    srv.stop()                                           # [] when every thread ended

What mailfs sends (sync/imap.c, sync/imap_sync.c, and recorded against
Dovecot): libcurl does the greeting, CAPABILITY and AUTHENTICATE PLAIN (SASL-IR
when offered; LOGIN when no AUTH=PLAIN), then mailfs sends CAPABILITY,
ENABLE QRESYNC, LIST "" "*" [RETURN (STATUS (...))], STATUS, SELECT
[(QRESYNC (v m))|(CONDSTORE)], UID FETCH 1:* (UID FLAGS RFC822.SIZE [MODSEQ]),
UID FETCH set (UID FLAGS INTERNALDATE BODY.PEEK[] [MODSEQ]), UID FETCH n:*,
UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m), IDLE / DONE. All of those are
modelled here. Anything that would change the account (STORE, EXPUNGE, COPY,
MOVE, APPEND, CREATE, DELETE, RENAME, ...) is logged and refused with NO:
the tests change nothing through the mount, so they assert that mailfs never
sends one (`srv.writes()`).

Hooks: srv.on(NAME, fn, times=None). NAME is the command as sent, upper case
("SELECT", "UID FETCH", "LIST", "IDLE", ...). fn(cmd) gets a Command; it
returns None to send the default answer, or bytes to send instead (b"" when
it sent everything itself with cmd.send). The first hook (in the order they
were added) that returns something other than None wins; `times` removes a
hook after it has answered that many times. cmd.default() runs the command
on the model and gives the default answer without sending it, so a hook can
rewrite it; cmd.untagged() and cmd.tagged() give its two parts. For FETCH,
cmd.fetch_msgs lists (seq, msg) in answer order and cmd.fetch_response(msg,
**overrides) renders one FETCH response with items replaced (uid=, flags=,
size=, body= (None for NIL), literal= (raw bytes standing for BODY[]),
modseq=, extra=). Overrides kept in msg.overrides apply to every FETCH.

The connection: srv.greeting (bytes; None to accept and never greet; or
fn(session) that greets, or not, with session.send and session.close),
srv.cut_after(nbytes, connection) (cut the n-th connection after exactly
nbytes sent),
srv.inject(raw) (to every connection: sent at once to an idling one, else
before its next answer), srv.drop_connections(), cmd.send(), cmd.close(),
cmd.stall(seconds=None) (blocks until the client goes away or stop()).
srv.log holds every command as (connection number, tag, NAME, raw arguments).
"""

import base64
import re
import select
import socket
import threading
import time

# What mailfs looks for (sync/imap.c parse_caps) plus what every server says.
ALL_CAPS = ("UIDPLUS", "CONDSTORE", "QRESYNC", "MOVE", "IDLE", "LITERAL+", "ENABLE",
            "ESEARCH", "LIST-STATUS")
PRELOGIN_CAPS = ("IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "AUTH=PLAIN", "AUTH=LOGIN")

# Commands that would change the account on the server.
WRITE_COMMANDS = {"STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE", "COPY", "UID COPY",
                  "MOVE", "UID MOVE", "APPEND", "CREATE", "DELETE", "RENAME",
                  "SUBSCRIBE", "UNSUBSCRIBE", "SETACL", "DELETEACL", "SETQUOTA",
                  "SETMETADATA"}

_ATOM_SPECIALS = b'(){ %*"\\]'


class SessionClosed(Exception):
    """The client went away (or a hook closed the connection)."""


# --- wire encoding ----------------------------------------------------------------

def _b(s):
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8", "surrogateescape")


def astring(data, force=None):
    """data as an IMAP astring: an atom when every byte may be one, a quoted
    string when every byte is 7-bit and not CR, LF or NUL, else a literal.
    force: "atom", "quoted" or "literal" to choose (a forced quoted string
    escapes only '"' and '\\')."""
    data = _b(data)
    form = force
    if form is None:
        if data and data.upper() != b"NIL" and all(
                0x20 < c < 0x7f and c not in _ATOM_SPECIALS or c == 0x5d for c in data):
            form = "atom"
        elif all(0 < c < 0x80 and c not in (10, 13) for c in data):
            form = "quoted"
        else:
            form = "literal"
    if form == "atom":
        return data
    if form == "quoted":
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def seqset(uids):
    """A compact set for a list of numbers: [1, 2, 3, 7] -> b"1:3,7"."""
    uids = sorted(set(uids))
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(b"%d" % uids[i] if i == j else b"%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return b",".join(out)


def parse_seqset(text, star):
    """The ranges [(lo, hi)] of a sequence set (bytes) where '*' is `star`
    (0 when the mailbox is empty: '*' then matches nothing). A range n:*
    with n past `star` still matches `star`, as RFC 3501 says. Raises
    ValueError when malformed."""
    out = []
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        lo = star if a == b"*" else int(a)
        hi = lo if not b else (star if b == b"*" else int(b))
        if lo > hi:
            lo, hi = hi, lo
        if hi == 0 or lo == 0 and star == 0:
            continue
        out.append((max(lo, 1), hi))
    return out


def in_seqset(ranges, n):
    return any(lo <= n <= hi for lo, hi in ranges)


# --- command parsing --------------------------------------------------------------

class Atom(bytes):
    """An atom of a command (bytes); strings are plain bytes, lists lists."""


def tokenize(data):
    """The arguments of a command (bytes, literals inline as {n}CRLF+bytes)
    as a list of Atom, bytes (strings) and lists."""
    stack = [[]]
    i, n = 0, len(data)
    while i < n:
        c = data[i:i + 1]
        if c in (b" ", b"\r", b"\n"):
            i += 1
        elif c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            if len(stack) == 1:
                raise ValueError("unbalanced )")
            lst = stack.pop()
            stack[-1].append(lst)
            i += 1
        elif c == b'"':
            j, out = i + 1, bytearray()
            while True:
                if j >= n:
                    raise ValueError("unterminated quoted string")
                ch = data[j:j + 1]
                if ch == b"\\":
                    out += data[j + 1:j + 2]
                    j += 2
                elif ch == b'"':
                    break
                else:
                    out += ch
                    j += 1
            stack[-1].append(bytes(out))
            i = j + 1
        elif c == b"{":
            m = re.compile(rb"\{(\d+)\+?\}\r\n").match(data, i)
            if not m:
                raise ValueError("bad literal")
            size = int(m.group(1))
            stack[-1].append(data[m.end():m.end() + size])
            i = m.end() + size
        else:
            j = i
            depth = 0
            while j < n:
                ch = data[j]
                if ch == 0x5b:
                    depth += 1
                elif ch == 0x5d and depth:
                    depth -= 1
                elif depth == 0 and ch in b' ()\r\n':
                    break
                j += 1
            stack[-1].append(Atom(data[i:j]))
            i = j
    if len(stack) != 1:
        raise ValueError("unbalanced (")
    return stack[0]


def upper(tok):
    return bytes(tok).upper().decode("latin-1") if isinstance(tok, bytes) else ""


# --- the model ----------------------------------------------------------------------

class Message:
    def __init__(self, uid, data, flags, internaldate, modseq):
        self.uid = uid
        self.data = data
        self.flags = list(flags)
        self.internaldate = internaldate
        self.modseq = modseq
        self.overrides = {}   # FETCH item overrides applied every time

    def __repr__(self):
        return "<Message uid=%d %d bytes>" % (self.uid, len(self.data))


class Folder:
    """One mailbox. name is the mailbox name as bytes (what a client sends
    back in SELECT); wire, when set, is exactly what LIST and STATUS show
    for the name instead of its astring; delim is bytes or None (NIL)."""

    def __init__(self, name, delim=b"/", attrs=(), uidvalidity=1, wire=None, delim_wire=None):
        self.name = _b(name)
        self.delim = None if delim is None else _b(delim)
        self.delim_wire = delim_wire
        self.attrs = list(attrs)
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.highestmodseq = 1
        self.messages = []          # sorted by uid
        self.expunged = []          # (uid, modseq)
        self.wire = wire
        self.generation = 0         # bumped when the mailbox is recreated

    @property
    def selectable(self):
        return not any(a.lower() in ("\\noselect", "\\nonexistent") for a in self.attrs)

    def by_uid(self, uid):
        for m in self.messages:
            if m.uid == uid:
                return m
        return None

    def wire_name(self):
        return self.wire if self.wire is not None else astring(self.name)


def _internaldate(t=None):
    t = time.gmtime(t if t is not None else time.time())
    return time.strftime("%d-%b-%Y %H:%M:%S +0000", t)


# --- commands -----------------------------------------------------------------------

class Command:
    """One command of a connection, as hooks see it."""

    def __init__(self, session, tag, name, raw, args):
        self.session = session
        self.server = session.server
        self.tag = tag          # bytes
        self.name = name        # "UID FETCH"
        self.raw = raw          # the arguments as sent (bytes)
        self.args = args        # tokenized
        self._result = None
        self.fetch_msgs = []    # FETCH: [(seq, Message)] in answer order
        self.fetch_items = []   # FETCH: the item names asked for, upper case
        self.fetch_uid = False

    # the default answer
    def _run(self):
        if self._result is None:
            self._result = self.session.execute(self)
        return self._result

    def default(self):
        untagged, tagged = self._run()
        return b"".join(untagged) + tagged

    def untagged(self):
        return b"".join(self._run()[0])

    def tagged(self):
        return self._run()[1]

    def ok(self, text=b"done"):
        return b"%s OK %s\r\n" % (self.tag, text)

    def no(self, text=b"refused"):
        return b"%s NO %s\r\n" % (self.tag, text)

    def bad(self, text=b"bad command"):
        return b"%s BAD %s\r\n" % (self.tag, text)

    def fetch_response(self, msg, seq=None, **ov):
        """One "* n FETCH (...)" for msg with the items this command asked
        for; keyword overrides replace items (see the module doc)."""
        self._run()
        if seq is None:
            seq = dict((m.uid, s) for s, m in self.fetch_msgs).get(msg.uid, 1)
        return self.session.render_fetch(seq, msg, self.fetch_items, self.fetch_uid,
                                         dict(msg.overrides, **ov))

    # the connection
    def send(self, data):
        self.session.send(data)

    def close(self):
        self.session.close()

    def stall(self, seconds=None):
        self.session.stall(seconds)

    @property
    def folder(self):
        return self.session.selected


class Session(threading.Thread):
    def __init__(self, server, sock, number):
        super().__init__(daemon=True, name="imapserver-%d" % number)
        self.server = server
        self.sock = sock
        self.number = number
        self.buf = bytearray()
        self.closed = threading.Event()
        self.wlock = threading.Lock()
        self.authenticated = False
        self.selected = None
        self.generation = 0
        self.readonly = False
        self.condstore = False
        self.qresync = False
        self.view = []                # uids as this session knows them
        self.view_flags = {}
        self.idling = False
        self.sent_bytes = 0

    # -- I/O
    def send(self, data):
        if not data:
            return
        with self.wlock:
            if self.closed.is_set():
                raise SessionClosed()
            cut = self.server._cut_for(self.number)
            if cut is not None and self.sent_bytes + len(data) >= cut:
                data = data[:cut - self.sent_bytes]
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                raise SessionClosed()
            self.sent_bytes += len(data)
            if cut is not None and self.sent_bytes >= cut:
                self.close()
                raise SessionClosed()

    def close(self):
        if not self.closed.is_set():
            self.closed.set()
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stall(self, seconds=None):
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.closed.is_set() and not self.server.stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self._client_gone(0.05):
                self.close()
                return

    def _client_gone(self, timeout):
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except OSError:
            return True
        if not data:
            return True
        self.buf += data
        return False

    def _fill(self):
        while True:
            if self.closed.is_set() or self.server.stopping.is_set():
                raise SessionClosed()
            try:
                r, _, _ = select.select([self.sock], [], [], 0.05)
            except (OSError, ValueError):
                raise SessionClosed()
            if self.idling:
                self._idle_tick()
            if not r:
                continue
            try:
                data = self.sock.recv(65536)
            except OSError:
                raise SessionClosed()
            if not data:
                raise SessionClosed()
            self.buf += data
            return

    def read_line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > (1 << 20):
                raise SessionClosed()
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_command(self):
        """A whole command: its line(s) with every literal inline."""
        out = bytearray()
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"\{(\d+)(\+?)\}\r?\n$", line)
            if not m:
                return bytes(out)
            if not m.group(2):
                self.send(b"+ go ahead\r\n")
            out += self.read_exact(int(m.group(1)))

    # -- the loop
    def run(self):
        try:
            self._serve()
        except SessionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - a server bug must be visible
            self.server.errors.append("connection %d: %r" % (self.number, e))
            import traceback
            self.server.errors.append(traceback.format_exc())
        finally:
            self.close()
            try:
                self.sock.close()
            except OSError:
                pass

    def _serve(self):
        greeting = self.server.greeting
        if greeting is None:
            self.stall()
            return
        if callable(greeting):
            greeting(self)
            if self.closed.is_set():
                return
        else:
            self.send(greeting)
        while True:
            raw = self.read_command()
            m = re.match(rb"([^ \r\n]+) ([^ \r\n]+)", raw)
            if not m:
                self.server._log(self.number, b"", "?", raw)
                self.send(b"* BAD cannot parse that\r\n")
                continue
            tag, name, end = m.group(1), m.group(2).upper(), m.end()
            if name == b"UID":
                m2 = re.compile(rb" ([^ \r\n]+)").match(raw, end)
                if m2:
                    name, end = b"UID " + m2.group(1).upper(), m2.end()
            name = name.decode("latin-1")
            rest = raw[end:]
            rest = rest[1:] if rest.startswith(b" ") else rest
            rest = rest[:-2] if rest.endswith(b"\r\n") else rest.rstrip(b"\n")
            self.server._log(self.number, tag, name, rest)
            try:
                args = tokenize(rest)
            except ValueError:
                self.send(b"%s BAD cannot parse the arguments\r\n" % tag)
                continue
            cmd = Command(self, tag, name, rest, args)
            self._flush_injected()
            answer = self.server._run_hooks(cmd)
            if answer is None:
                if name == "IDLE" and self.authenticated:
                    self._idle(cmd)
                    continue
                answer = cmd.default()
            self.send(answer)
            if name == "LOGOUT" and cmd._result is not None:
                self.close()
                return

    # -- pushes
    def _flush_injected(self):
        data = self.server._take_injected(self)
        if data:
            self.send(data)

    def _idle_tick(self):
        self._flush_injected()
        if self.selected is not None:
            self.send(self.updates())

    def _idle(self, cmd):
        self.idling = True
        try:
            self.send(b"+ idling\r\n")
            self._idle_tick()
            while True:
                line = self.read_line()
                if line.strip().upper() == b"DONE":
                    break
                self.server._log(self.number, b"", "IDLE-LINE", line.strip())
        finally:
            self.idling = False
        self.send(b"%s OK idle done\r\n" % cmd.tag)

    def updates(self):
        """What changed in the selected mailbox since this connection last
        looked, as untagged responses; brings the view up to date."""
        with self.server.lock:
            f = self.selected
            if f is None:
                return b""
            if f.generation != self.generation or f not in self.server.folders.values():
                self.send(b"* BYE the selected mailbox was recreated\r\n")
                self.close()
                raise SessionClosed()
            out = []
            present = {m.uid: m for m in f.messages}
            gone = [u for u in self.view if u not in present]
            if gone:
                if self.qresync:
                    out.append(b"* VANISHED %s\r\n" % seqset(gone))
                    self.view = [u for u in self.view if u in present]
                else:
                    for u in reversed(list(gone)):
                        seq = self.view.index(u) + 1
                        out.append(b"* %d EXPUNGE\r\n" % seq)
                        del self.view[seq - 1]
                for u in gone:
                    self.view_flags.pop(u, None)
            known = set(self.view)
            new = [m.uid for m in f.messages if m.uid not in known]
            if new:
                self.view += new
                out.append(b"* %d EXISTS\r\n" % len(self.view))
            for seq, u in enumerate(self.view, 1):
                m = present[u]
                fl = tuple(m.flags)
                if u in known and self.view_flags.get(u) != fl:
                    ms = b" MODSEQ (%d)" % m.modseq if self.condstore else b""
                    out.append(b"* %d FETCH (UID %d FLAGS (%s)%s)\r\n"
                               % (seq, u, " ".join(fl).encode(), ms))
                self.view_flags[u] = fl
            return b"".join(out)

    # -- executing
    def execute(self, cmd):
        """(untagged chunks, tagged line) of the default answer."""
        name = cmd.name
        if name in WRITE_COMMANDS:
            return [], cmd.no(b"this test server is read-only")
        handler = getattr(self, "cmd_" + name.replace(" ", "_").lower(), None)
        if handler is None:
            return [], cmd.bad(b"unknown command")
        needs_auth = name not in ("CAPABILITY", "LOGIN", "AUTHENTICATE", "NOOP", "LOGOUT")
        if needs_auth and not self.authenticated:
            return [], cmd.bad(b"log in first")
        with self.server.lock:
            pre = []
            if name not in ("SELECT", "EXAMINE") and self.selected is not None:
                pre = [self.updates()]
            untagged, tagged = handler(cmd)
        return pre + untagged, tagged

    def cmd_capability(self, cmd):
        caps = self.server.caps if self.authenticated else self.server.prelogin_caps
        return [b"* CAPABILITY %s\r\n" % " ".join(caps).encode()], cmd.ok(b"capability done")

    def cmd_noop(self, cmd):
        return [], cmd.ok()

    def cmd_logout(self, cmd):
        return [b"* BYE logging out\r\n"], cmd.ok(b"logout done")

    def cmd_login(self, cmd):
        if len(cmd.args) != 2:
            return [], cmd.bad()
        return self._auth(cmd, cmd.args[0], cmd.args[1])

    def cmd_authenticate(self, cmd):
        if not cmd.args or upper(cmd.args[0]) != "PLAIN":
            return [], cmd.no(b"[CANNOT] only PLAIN")
        if len(cmd.args) > 1:
            ir = bytes(cmd.args[1])
        else:
            self.send(b"+ \r\n")
            ir = self.read_line().strip()
        try:
            parts = base64.b64decode(ir, validate=True).split(b"\0")
        except ValueError:
            return [], cmd.bad(b"bad base64")
        if len(parts) != 3:
            return [], cmd.bad(b"bad PLAIN")
        return self._auth(cmd, parts[1], parts[2])

    def _auth(self, cmd, user, password):
        pw = self.server.users.get(bytes(user).decode("utf-8", "replace"))
        if pw is None or _b(pw) != bytes(password):
            return [], cmd.no(b"[AUTHENTICATIONFAILED] wrong user or password")
        self.authenticated = True
        caps = " ".join(self.server.caps).encode()
        return [], b"%s OK [CAPABILITY %s] logged in\r\n" % (cmd.tag, caps)

    def cmd_enable(self, cmd):
        on = []
        for a in cmd.args:
            n = upper(a)
            if n == "QRESYNC" and "QRESYNC" in self.server.caps:
                self.qresync = self.condstore = True
                on.append(n)
            elif n == "CONDSTORE" and "CONDSTORE" in self.server.caps:
                self.condstore = True
                on.append(n)
        if "ENABLE" not in self.server.caps:
            return [], cmd.bad(b"no ENABLE here")
        return [b"* ENABLED %s\r\n" % " ".join(on).encode()], cmd.ok(b"enabled")

    def _has(self, cap):
        return cap in self.server.caps

    def _status_items(self, f, items):
        out = []
        for it in items:
            n = upper(it)
            if n == "MESSAGES":
                out.append(b"MESSAGES %d" % len(f.messages))
            elif n == "RECENT":
                out.append(b"RECENT 0")
            elif n == "UIDNEXT":
                out.append(b"UIDNEXT %d" % f.uidnext)
            elif n == "UIDVALIDITY":
                out.append(b"UIDVALIDITY %d" % f.uidvalidity)
            elif n == "UNSEEN":
                out.append(b"UNSEEN %d" % sum(1 for m in f.messages if "\\Seen" not in m.flags))
            elif n == "HIGHESTMODSEQ" and self._has("CONDSTORE"):
                out.append(b"HIGHESTMODSEQ %d" % f.highestmodseq)
            else:
                return None
        return b"* STATUS %s (%s)\r\n" % (f.wire_name(), b" ".join(out))

    def cmd_list(self, cmd):
        a = cmd.args
        if len(a) < 2:
            return [], cmd.bad()
        status_items = None
        if len(a) > 2:
            if (len(a) != 4 or upper(a[2]) != "RETURN" or not isinstance(a[3], list)
                    or not self._has("LIST-STATUS")):
                return [], cmd.bad(b"LIST-EXTENDED is not offered")
            r = a[3]
            if len(r) != 2 or upper(r[0]) != "STATUS" or not isinstance(r[1], list):
                return [], cmd.bad(b"only RETURN (STATUS (...))")
            status_items = r[1]
        pattern = bytes(a[0]) + bytes(a[1])
        rx = re.compile(b"^" + b"".join(b".*" if c == b"*" else b"[^/]*" if c == b"%"
                                        else re.escape(c)
                                        for c in (pattern[i:i + 1] for i in range(len(pattern))))
                        + b"$", re.S)
        out = []
        for f in self.server.folders.values():
            if not rx.match(f.name):
                continue
            if f.delim_wire is not None:
                d = f.delim_wire
            elif f.delim is None:
                d = b"NIL"
            else:
                d = astring(f.delim, force="quoted")
            out.append(b"* LIST (%s) %s %s\r\n" % (" ".join(f.attrs).encode(), d, f.wire_name()))
            if status_items is not None and f.selectable:
                line = self._status_items(f, status_items)
                if line is None:
                    return [], cmd.bad(b"unknown STATUS item")
                out.append(line)
        return out, cmd.ok(b"list done")

    def cmd_status(self, cmd):
        a = cmd.args
        if len(a) != 2 or not isinstance(a[1], list):
            return [], cmd.bad()
        f = self.server.find(bytes(a[0]))
        if f is None or not f.selectable:
            return [], cmd.no(b"[NONEXISTENT] no such mailbox")
        line = self._status_items(f, a[1])
        if line is None:
            return [], cmd.bad(b"unknown STATUS item")
        return [line], cmd.ok(b"status done")

    def cmd_examine(self, cmd):
        return self.cmd_select(cmd, readonly=True)

    def cmd_select(self, cmd, readonly=False):
        a = cmd.args
        self.selected = None
        self.view, self.view_flags = [], {}
        if not a:
            return [], cmd.bad()
        f = self.server.find(bytes(a[0]))
        if f is None or not f.selectable:
            return [b"* OK [CLOSED] closed\r\n"], cmd.no(b"[NONEXISTENT] no such mailbox")
        qres = None
        if len(a) > 1:
            p = a[1]
            if not isinstance(p, list) or not p:
                return [], cmd.bad(b"bad SELECT parameters")
            if upper(p[0]) == "CONDSTORE" and self._has("CONDSTORE"):
                self.condstore = True
            elif (upper(p[0]) == "QRESYNC" and self.qresync and len(p) == 2
                  and isinstance(p[1], list) and len(p[1]) >= 2):
                qres = (int(p[1][0]), int(p[1][1]))
            else:
                return [], cmd.bad(b"unknown SELECT parameter")
        self.selected = f
        self.generation = f.generation
        self.readonly = readonly
        self.view = [m.uid for m in f.messages]
        self.view_flags = {m.uid: tuple(m.flags) for m in f.messages}
        out = [b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
               b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok\r\n",
               b"* %d EXISTS\r\n" % len(f.messages), b"* 0 RECENT\r\n",
               b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % f.uidvalidity,
               b"* OK [UIDNEXT %d] next\r\n" % f.uidnext]
        if self._has("CONDSTORE"):
            if self.server.nomodseq:
                out.append(b"* OK [NOMODSEQ] no modseqs here\r\n")
            else:
                out.append(b"* OK [HIGHESTMODSEQ %d] highest\r\n" % f.highestmodseq)
        if qres and qres[0] == f.uidvalidity:
            since = qres[1]
            gone = [u for u, ms in f.expunged if ms > since]
            if gone:
                out.append(b"* VANISHED (EARLIER) %s\r\n" % seqset(gone))
            for seq, m in enumerate(f.messages, 1):
                if m.modseq > since:
                    out.append(b"* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))\r\n"
                               % (seq, m.uid, " ".join(m.flags).encode(), m.modseq))
        rw = b"READ-ONLY" if readonly else b"READ-WRITE"
        return out, b"%s OK [%s] select done\r\n" % (cmd.tag, rw)

    def cmd_close(self, cmd):
        if self.selected is None:
            return [], cmd.bad(b"no mailbox selected")
        self.selected = None
        self.view, self.view_flags = [], {}
        return [], cmd.ok(b"closed")

    cmd_unselect = cmd_close

    def cmd_uid_search(self, cmd):
        """UID SEARCH ALL, UID SEARCH DELETED, and the ESEARCH form
        UID SEARCH RETURN (ALL) ALL."""
        f = self.selected
        if f is None:
            return [], cmd.bad(b"no mailbox selected")
        a = [upper(x) if not isinstance(x, list) else [upper(y) for y in x] for x in cmd.args]
        esearch = False
        if len(a) >= 2 and a[0] == "RETURN":
            if not self._has("ESEARCH") or a[1] != ["ALL"]:
                return [], cmd.bad(b"unsupported RETURN")
            esearch = True
            a = a[2:]
        if a == ["ALL"]:
            uids = [m.uid for m in f.messages]
        elif a == ["DELETED"]:
            uids = [m.uid for m in f.messages if "\\Deleted" in m.flags]
        else:
            return [], cmd.bad(b"search key not known here")
        if esearch:
            line = b'* ESEARCH (TAG "%s") UID' % cmd.tag
            if uids:
                line += b" ALL " + seqset(uids)
            return [line + b"\r\n"], cmd.ok(b"search done")
        return [b"* SEARCH" + b"".join(b" %d" % u for u in uids) + b"\r\n"], \
            cmd.ok(b"search done")

    def cmd_fetch(self, cmd):
        return self._fetch(cmd, uid=False)

    def cmd_uid_fetch(self, cmd):
        return self._fetch(cmd, uid=True)

    def _fetch(self, cmd, uid):
        f = self.selected
        a = cmd.args
        if f is None:
            return [], cmd.bad(b"no mailbox selected")
        if len(a) < 2:
            return [], cmd.bad()
        items = a[1] if isinstance(a[1], list) else [a[1]]
        names = []
        for it in items:
            n = upper(it)
            macro = {"ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
                     "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]}.get(n)
            if macro:
                names += macro
            elif re.fullmatch(r"BODY(\.PEEK)?\[\]<0\.\d+>", n):
                names.append(n)
            elif n in ("UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "BODY.PEEK[]", "BODY[]",
                       "RFC822", "MODSEQ"):
                if n == "MODSEQ" and not self._has("CONDSTORE"):
                    return [], cmd.bad(b"no CONDSTORE here")
                names.append(n)
            else:
                return [], cmd.bad(b"fetch item not known here")
        changedsince = None
        if len(a) > 2:
            mods = a[2]
            if not isinstance(mods, list) or len(mods) < 2 or upper(mods[0]) != "CHANGEDSINCE" \
                    or not self._has("CONDSTORE"):
                return [], cmd.bad(b"unknown FETCH modifier")
            changedsince = int(mods[1])
            if "MODSEQ" not in names:
                names.append("MODSEQ")
        if "MODSEQ" in names:
            self.condstore = True
        try:
            if uid:
                star = f.messages[-1].uid if f.messages else 0
                want = parse_seqset(bytes(a[0]), star)
                pairs = [(seq, m) for seq, m in enumerate(f.messages, 1)
                         if in_seqset(want, m.uid)]
            else:
                want = parse_seqset(bytes(a[0]), len(f.messages))
                pairs = [(seq, m) for seq, m in enumerate(f.messages, 1) if in_seqset(want, seq)]
        except ValueError:
            return [], cmd.bad(b"bad sequence set")
        if changedsince is not None:
            pairs = [(s, m) for s, m in pairs if m.modseq > changedsince]
        cmd.fetch_items = names
        cmd.fetch_uid = uid
        cmd.fetch_msgs = pairs
        out = []
        for seq, m in pairs:
            r = self.render_fetch(seq, m, names, uid, m.overrides)
            if r:
                out.append(r)
        return out, cmd.ok(b"fetch done")

    def render_fetch(self, seq, m, names, uid, ov):
        if ov.get("skip"):
            return b""
        parts = []
        names = list(names)
        if uid and "UID" not in names:
            names.insert(0, "UID")
        for n in names:
            if n == "UID":
                parts.append(b"UID %s" % _num(ov.get("uid", m.uid)))
            elif n == "FLAGS":
                fl = ov.get("flags")
                parts.append(b"FLAGS (%s)" % (_b(fl) if fl is not None
                                              else " ".join(m.flags).encode()))
            elif n == "RFC822.SIZE":
                parts.append(b"RFC822.SIZE %s" % _num(ov.get("size", len(m.data))))
            elif n == "INTERNALDATE":
                parts.append(b'INTERNALDATE "%s"' % m.internaldate.encode())
            elif n == "MODSEQ":
                parts.append(b"MODSEQ (%s)" % _num(ov.get("modseq", m.modseq)))
            elif n.startswith("BODY") and n.endswith(">"):
                # a partial fetch <0.N>: the first N bytes, named BODY[]<0>
                limit = int(n[n.index("<0.") + 3:-1])
                body = ov.get("body", m.data)
                if "literal" in ov:
                    parts.append(b"BODY[]<0> " + ov["literal"])
                elif body is None:
                    parts.append(b"BODY[]<0> NIL")
                else:
                    part = body[:limit]
                    parts.append(b"BODY[]<0> {%d}\r\n" % len(part) + part)
            elif n in ("BODY.PEEK[]", "BODY[]", "RFC822"):
                key = "RFC822" if n == "RFC822" else "BODY[]"
                if "literal" in ov:
                    parts.append(key.encode() + b" " + ov["literal"])
                else:
                    body = ov.get("body", m.data)
                    parts.append(key.encode() + b" " + (b"NIL" if body is None else
                                                        b"{%d}\r\n" % len(body) + body))
        if ov.get("extra"):
            parts.append(ov["extra"])
        return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))


def _num(v):
    return v if isinstance(v, bytes) else b"%d" % v


class ImapServer:
    """The scripted server and its model. Thread-safe: tests change the
    model from their own thread while connections read it."""

    host = "127.0.0.1"
    ca_file = None

    def __init__(self, caps=ALL_CAPS, users=None, prelogin_caps=PRELOGIN_CAPS,
                 uidvalidity=1000):
        self.caps = ["IMAP4rev1"] + [c for c in caps if c != "IMAP4rev1"]
        self.prelogin_caps = list(prelogin_caps)
        if "LITERAL+" in caps and "LITERAL+" not in self.prelogin_caps:
            self.prelogin_caps.append("LITERAL+")
        self.users = dict(users or {"alice": "secret"})
        self.greeting = b"* OK [CAPABILITY %s] scripted IMAP server ready\r\n" % \
            " ".join(self.prelogin_caps).encode()
        self.nomodseq = False
        self.lock = threading.RLock()
        self.folders = {}                   # name bytes -> Folder, in LIST order
        self._next_validity = uidvalidity
        self.add_folder("INBOX")
        self.hooks = []                     # [name, fn, times left or None]
        self.log = []                       # (connection, tag, NAME, raw args)
        self.errors = []                    # exceptions inside the server
        self.sessions = []
        self.stopping = threading.Event()
        self._injected = {}
        self._cuts = {}
        self.port = None
        self._listener = None
        self._accept_thread = None

    # -- lifecycle
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, 0))
        s.listen(16)
        self._listener = s
        self.port = s.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept, daemon=True,
                                               name="imapserver-accept")
        self._accept_thread.start()
        return self

    def _accept(self):
        n = 0
        while not self.stopping.is_set():
            try:
                r, _, _ = select.select([self._listener], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                sock, _ = self._listener.accept()
            except OSError:
                continue
            n += 1
            sess = Session(self, sock, n)
            with self.lock:
                self.sessions.append(sess)
            sess.start()

    def stop(self, timeout=5):
        """Close every connection and end every thread. Returns the names of
        threads still alive after `timeout` (empty when all ended)."""
        self.stopping.set()
        try:
            self._listener.close()
        except (OSError, AttributeError):
            pass
        with self.lock:
            sessions = list(self.sessions)
        for s in sessions:
            s.close()
        left = []
        deadline = time.monotonic() + timeout
        for t in [self._accept_thread] + sessions:
            if t is None:
                continue
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                left.append(t.name)
        return left

    def drop_connections(self):
        """Cut every open connection now (as a crashing server would)."""
        with self.lock:
            sessions = list(self.sessions)
        for s in sessions:
            s.close()

    @property
    def connections(self):
        """How many connections were accepted so far."""
        with self.lock:
            return len(self.sessions)

    def idling(self, folder=None):
        """Whether a connection is in IDLE now (with `folder` selected)."""
        with self.lock:
            return any(s.idling and not s.closed.is_set() and
                       (folder is None or (s.selected is not None and s.selected.name == _b(folder)))
                       for s in self.sessions)

    # -- the model
    def add_folder(self, name, delim="/", attrs=(), uidvalidity=None, wire=None,
                   delim_wire=None):
        with self.lock:
            if uidvalidity is None:
                uidvalidity = self._next_validity
                self._next_validity += 1
            f = Folder(name, delim, attrs, uidvalidity, wire, delim_wire)
            self.folders[f.name] = f
            return f

    def remove_folder(self, name):
        with self.lock:
            f = self.folder(name)
            del self.folders[f.name]

    def find(self, name):
        """The folder a client means by `name` (INBOX in any case), or None."""
        with self.lock:
            if name.upper() == b"INBOX":
                name = b"INBOX"
            return self.folders.get(name)

    def folder(self, name):
        f = self.find(_b(name))
        if f is None:
            raise KeyError(name)
        return f

    def append(self, folder, data, flags=(), internaldate=None, uid=None, **overrides):
        """Add a message; returns its UID. overrides go to msg.overrides."""
        with self.lock:
            f = self.folder(folder)
            if uid is None:
                uid = f.uidnext
            assert not f.messages or uid > f.messages[-1].uid, "UIDs must ascend"
            f.highestmodseq += 1
            m = Message(uid, _b(data), flags, internaldate or _internaldate(), f.highestmodseq)
            m.overrides.update(overrides)
            f.messages.append(m)
            f.uidnext = max(f.uidnext, uid + 1)
            return uid

    def message(self, folder, uid):
        with self.lock:
            m = self.folder(folder).by_uid(uid)
            if m is None:
                raise KeyError((folder, uid))
            return m

    def expunge(self, folder, uid):
        """The server (another client) expunges a message."""
        with self.lock:
            f = self.folder(folder)
            m = f.by_uid(uid)
            f.messages.remove(m)
            f.highestmodseq += 1
            f.expunged.append((uid, f.highestmodseq))

    def set_flags(self, folder, uid, flags):
        """Another client changes a message's flags."""
        with self.lock:
            f = self.folder(folder)
            m = f.by_uid(uid)
            f.highestmodseq += 1
            m.flags = list(flags)
            m.modseq = f.highestmodseq

    def recreate(self, folder, uidvalidity=None, renumber=None):
        """The mailbox gets a new UIDVALIDITY (as when it is deleted and made
        again): renumber(old uid) -> new uid (default: keep). Messages whose
        new uid is None are dropped. Connections that have it selected get
        BYE, as Dovecot does."""
        with self.lock:
            f = self.folder(folder)
            if uidvalidity is None:
                uidvalidity = self._next_validity
                self._next_validity += 1
            f.uidvalidity = uidvalidity
            f.generation += 1
            msgs = []
            for m in f.messages:
                nu = renumber(m.uid) if renumber else m.uid
                if nu is not None:
                    m.uid = nu
                    msgs.append(m)
            f.messages = sorted(msgs, key=lambda m: m.uid)
            f.expunged = []
            f.uidnext = (f.messages[-1].uid + 1) if f.messages else 1
            f.highestmodseq += 1
            for m in f.messages:
                m.modseq = f.highestmodseq

    # -- hooks and injection
    def cut_after(self, nbytes, connection):
        """Cut connection number `connection` (1 is the first accepted) once
        the server has sent it exactly nbytes bytes."""
        with self.lock:
            self._cuts[connection] = nbytes

    def _cut_for(self, number):
        with self.lock:
            return self._cuts.get(number)

    def on(self, name, fn, times=None):
        """Install a hook for command NAME (see the module doc)."""
        with self.lock:
            self.hooks.append([name.upper(), fn, times])

    def clear_hooks(self):
        with self.lock:
            self.hooks = []

    def _run_hooks(self, cmd):
        with self.lock:
            hooks = [h for h in self.hooks if h[0] == cmd.name]
        for h in hooks:
            r = h[1](cmd)
            if r is not None:
                with self.lock:
                    if h[2] is not None:
                        h[2] -= 1
                        if h[2] <= 0 and h in self.hooks:
                            self.hooks.remove(h)
                return r
        return None

    def inject(self, raw):
        """Raw bytes to every open connection: at once when it idles, else
        before its next answer."""
        with self.lock:
            for s in self.sessions:
                if not s.closed.is_set():
                    self._injected.setdefault(s.number, bytearray()).extend(raw)

    def _take_injected(self, sess):
        with self.lock:
            return bytes(self._injected.pop(sess.number, b""))

    def _log(self, number, tag, name, raw):
        with self.lock:
            self.log.append((number, tag, name, raw))

    # -- what was asked
    def commands(self, name=None):
        """[(connection, tag, NAME, raw args)] of every command (or those
        named NAME)."""
        with self.lock:
            return [e for e in self.log if name is None or e[2] == name.upper()]

    def writes(self):
        """Commands that would have changed the account."""
        return [e for e in self.commands() if e[2] in WRITE_COMMANDS]

    def transcript(self):
        """The command log as text (for failure messages and the log file)."""
        with self.lock:
            return "\n".join("%d %s %s %r" % (n, t.decode("latin-1"), name, raw[:300])
                             for n, t, name, raw in self.log)

    def wait_for(self, predicate, timeout, what="the server saw it"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        raise AssertionError("not within %.1f s: %s" % (timeout, what))
