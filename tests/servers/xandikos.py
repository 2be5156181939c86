#!/usr/bin/python3
"""A real Xandikos CalDAV/CardDAV server for tests (a second server, unlike
Radicale): started on a free loopback port from a temporary directory, as a
module (class Xandikos) or a CLI.

    /usr/bin/python3 tests/servers/xandikos.py start --dir D [--port N]
        -> writes D/server.json and prints it
    /usr/bin/python3 tests/servers/xandikos.py stop --dir D

Xandikos 0.2.8 has no authentication. Started with --defaults, it makes the
principal /user/ with the calendar /user/calendars/calendar/ and the address
book /user/contacts/addressbook/ (DEFAULT_CALENDAR, DEFAULT_ADDRESSBOOK);
each collection is a git repository under D/data (the calendar lives in
D/data/user/calendars/calendar/). Quirks a client must cope with: a refused
PUT comes back as 207 Multi-Status holding the real 412; a sync token it
does not know gives 500; there is no MOVE (405); MKCOL ignores the component
set; requests with a body need a Content-Type.

Startup takes about 0.5 s; stop() leaves no process behind.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from radicale import (PYTHON, DavClient, ServerError, alive, free_port,  # noqa: E402
                      make_basedir, stop_process)

DEFAULT_CALENDAR = "/user/calendars/calendar/"
DEFAULT_ADDRESSBOOK = "/user/contacts/addressbook/"
PRINCIPAL = "/user/"

__all__ = ["Xandikos", "make_basedir", "DEFAULT_CALENDAR", "DEFAULT_ADDRESSBOOK",
           "PRINCIPAL"]


class Xandikos:
    """One Xandikos instance in basedir. Not started until start()."""

    host = "127.0.0.1"

    def __init__(self, basedir, port=None):
        self.basedir = os.path.abspath(str(basedir))
        self.root = os.path.join(self.basedir, "data")
        self.port = port
        self._fixed_port = port is not None
        self.log_path = os.path.join(self.basedir, "xandikos.log")
        self.pid = None
        self._proc = None
        self.start_seconds = None

    @property
    def url(self):
        return "http://%s:%d/" % (self.host, self.port)

    def collection_dir(self, path):
        return os.path.join(self.root, path.strip("/"))

    def start(self):
        t0 = time.monotonic()
        if self.pid and alive(self.pid):
            raise ServerError("already running (pid %d)" % self.pid)
        os.makedirs(self.root, exist_ok=True)
        for attempt in range(20):
            if not self._fixed_port:
                self.port = free_port()
            offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    [PYTHON, "-m", "xandikos", "-d", self.root, "--defaults",
                     "-l", self.host, "-p", str(self.port),
                     "--current-user-principal", PRINCIPAL],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                    start_new_session=True, cwd=self.basedir)
            self.pid = self._proc.pid
            if self._wait_ready(15):
                break
            rc = self._proc.poll()
            text = self._read_from(offset)
            if rc is None:
                self.stop()
                raise ServerError("xandikos did not answer on port %d:\n%s" % (self.port, text))
            self.pid = self._proc = None
            if "in use" in text and not self._fixed_port:
                continue
            raise ServerError("xandikos exited with %d:\n%s" % (rc, text))
        else:
            raise ServerError("no free port found")
        self._fixed_port = True
        self.start_seconds = time.monotonic() - t0

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                st, _, _ = self.client().request("OPTIONS", "/")
                if st < 500:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        return False

    def _read_from(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log(self):
        return self._read_from(0)

    def stop(self):
        stop_process(self._proc, self.pid, self.root)
        self.pid = None
        self._proc = None

    def running(self):
        return bool(self.pid and alive(self.pid))

    def client(self):
        """A DavClient (Xandikos has no authentication)."""
        return DavClient(self.host, self.port)

    def make_calendar(self, path, displayname=None, comps=("VEVENT", "VTODO", "VJOURNAL")):
        st = self.client().mkcalendar(path, displayname, comps)
        if st != 201:
            raise ServerError("MKCALENDAR %s: %d" % (path, st))

    def make_addressbook(self, path, displayname=None):
        st = self.client().mkaddressbook(path, displayname)
        if st != 201:
            raise ServerError("MKCOL %s: %d" % (path, st))

    def put(self, path, data, **kw):
        return self.client().put(path, data, **kw)

    def bulk_put(self, collection, items):
        """Many items at once ({name: bytes}), committed in one go (git
        fast-import: one pack, not a loose object per item) into the
        collection's git repository, where Xandikos reads them; the index
        follows the commit and the files are written to the work tree, as a
        PUT would leave them. Thousands of PUTs (one commit each) would take
        15 s and more."""
        d = self.collection_dir(collection)
        if not os.path.isdir(os.path.join(d, ".git")):
            raise ServerError("no collection %s" % collection)
        git = ["git", "-C", d]
        ref = subprocess.run(git + ["symbolic-ref", "HEAD"], check=True, capture_output=True,
                             text=True).stdout.strip()
        has_head = subprocess.run(git + ["rev-parse", "-q", "--verify", ref],
                                  capture_output=True).returncode == 0
        chunks = [b"commit %s\ncommitter tests <tests@localhost> 0 +0000\ndata 4\nbulk\n"
                  % ref.encode()]
        if has_head:
            chunks.append(b"from %s^0\n" % ref.encode())
        for name, data in items.items():
            if any(c in name for c in "\n\"\\") or name.startswith(" "):
                raise ServerError("bulk_put: no such names here: %r" % name)
            chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (name.encode(), len(data), data))
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        subprocess.run(git + ["fast-import", "--quiet"], input=b"".join(chunks), check=True)
        subprocess.run(git + ["read-tree", ref], check=True)

    def info(self):
        return {"host": self.host, "port": self.port, "url": self.url, "root": self.root,
                "basedir": self.basedir, "log": self.log_path, "pid": self.pid,
                "calendar": DEFAULT_CALENDAR, "addressbook": DEFAULT_ADDRESSBOOK,
                "principal": PRINCIPAL}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def _cli(argv):
    ap = argparse.ArgumentParser(prog="xandikos.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a server in DIR and write DIR/server.json")
    st.add_argument("--dir", required=True)
    st.add_argument("--port", type=int)
    sp = sub.add_parser("stop", help="stop the server in DIR")
    sp.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    d = os.path.abspath(a.dir)
    state = os.path.join(d, "server.json")
    if a.cmd == "start":
        os.makedirs(d, exist_ok=True)
        srv = Xandikos(d, port=a.port)
        srv.start()
        info = srv.info()
        with open(state, "w") as f:
            json.dump(info, f, indent=1)
        print(json.dumps(info, indent=1))
        return 0
    try:
        with open(state) as f:
            info = json.load(f)
    except OSError as e:
        print("xandikos.py: no server in %s (%s)" % (d, e), file=sys.stderr)
        return 1
    stop_process(None, info.get("pid"), info["root"])
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
