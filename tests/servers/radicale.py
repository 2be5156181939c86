#!/usr/bin/python3
"""A real Radicale CalDAV/CardDAV server for tests: started on a free loopback
port from a temporary directory, as a module (class Radicale) or a CLI.

    /usr/bin/python3 tests/servers/radicale.py start --dir D [--user alice:secret]
        [--ssl] [--port N]   -> writes D/server.json and prints it
    /usr/bin/python3 tests/servers/radicale.py stop --dir D

htpasswd authentication with plain passwords (no delay after a wrong one),
owner-only rights, filesystem storage in D/collections: the collection
/alice/cal/ lives in D/collections/collection-root/alice/cal/. Radicale
answers with HTTP/1.0 (one connection per request). With ssl=True it serves
https with a certificate for 127.0.0.1 signed by a CA made here (ca_file).

DavClient (also used by xandikos.py) is an independent WebDAV client on
http.client for preparing and checking the server side in tests: it never
goes through mailfs. Paths given to it are decoded ("/alice/my cal/é.ics");
it percent-encodes them.

Startup takes about 0.3 s; stop() leaves no process behind.
"""

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import ssl as ssl_mod
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

PYTHON = "/usr/bin/python3"  # Debian's, where radicale is installed (DESIGN section 9)

NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav",
      "A": "urn:ietf:params:xml:ns:carddav", "CS": "http://calendarserver.org/ns/"}


# Radicale's own main with its private option _filesystem_fsync off (a
# config file may not set options starting with "_"; Radicale's test suite
# sets it the same way). Without the option (another Radicale), it runs as is.
NO_FSYNC_LAUNCHER = """
import sys
from radicale import config, __main__ as main
_load = config.load
def load(*args, **kwargs):
    conf = _load(*args, **kwargs)
    try:
        conf.update({"storage": {"_filesystem_fsync": "False"}}, "tests", privileged=True)
    except Exception:
        pass
    return conf
config.load = load
sys.argv[0] = "radicale"
main.run()
"""


class ServerError(RuntimeError):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_process(proc, pid, marker, timeout=5):
    """Stop the server process pid (its own session): SIGTERM, then SIGKILL.
    marker: a string its command line must hold (a pid read from a file may
    have been reused by another program)."""
    if not pid or not alive(pid) or marker not in cmdline(pid):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    return
            elif not alive(pid):
                return
            time.sleep(0.01)
    raise ServerError("server process %d did not stop" % pid)


def make_ca_and_cert(d):
    """A CA (d/ca.pem) and a server certificate for 127.0.0.1 and localhost
    (d/server.pem, d/server.key) made with openssl; returns the three paths."""
    ca, key, cert = (os.path.join(d, n) for n in ("ca.pem", "server.key", "server.pem"))
    if os.path.exists(cert):
        return ca, cert, key
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
         "-subj", "/CN=mailfs DAV test CA",
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
    return ca, cert, key


# --- items -------------------------------------------------------------------------

def make_event(uid, summary="Event", start="20260105T100000Z", extra=""):
    """A VCALENDAR holding one VEVENT, CRLF line ends, as bytes."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mailfs tests//EN",
             "BEGIN:VEVENT", "UID:" + uid, "DTSTART:" + start, "DTSTAMP:20260101T000000Z",
             "SUMMARY:" + summary]
    lines += [x for x in extra.split("\n") if x]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()


def make_vcard(uid, fn="Alice Example"):
    """A vCard 3.0 as bytes."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", "UID:" + uid, "FN:" + fn,
             "N:%s;;;;" % fn, "END:VCARD"]
    return ("\r\n".join(lines) + "\r\n").encode()


# --- an independent client -----------------------------------------------------------

def quote_path(path):
    return urllib.parse.quote(path, safe="/")


class DavClient:
    """WebDAV over http.client with Basic auth. Every method takes decoded
    paths. A new connection per request (Radicale closes after each)."""

    def __init__(self, host, port, user=None, password=None, ssl_context=None):
        self.host, self.port = host, port
        self.auth = None
        if user is not None:
            tok = base64.b64encode(("%s:%s" % (user, password or "")).encode()).decode()
            self.auth = "Basic " + tok
        self.ssl_context = ssl_context

    def request(self, method, path, body=None, headers=None, raw_path=False):
        """(status, {lower-case header: value}, body bytes)."""
        if self.ssl_context is not None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ssl_context,
                                            timeout=30)
        else:
            c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        h = dict(headers or {})
        if self.auth:
            h["Authorization"] = self.auth
        if isinstance(body, str):
            body = body.encode()
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/xml; charset=utf-8"
        try:
            c.request(method, path if raw_path else quote_path(path), body, h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def put(self, path, data, ctype="text/calendar; charset=utf-8", if_match=None,
            if_none_match=None):
        """(status, etag or None)."""
        h = {"Content-Type": ctype}
        if if_match:
            h["If-Match"] = if_match
        if if_none_match:
            h["If-None-Match"] = if_none_match
        st, hd, _ = self.request("PUT", path, data, h)
        return st, hd.get("etag")

    def get(self, path):
        """(status, etag, body bytes)."""
        st, hd, body = self.request("GET", path)
        return st, hd.get("etag"), body

    def delete(self, path, if_match=None):
        st, _, _ = self.request("DELETE", path, None, {"If-Match": if_match} if if_match else {})
        return st

    def mkcalendar(self, path, displayname=None, comps=("VEVENT", "VTODO", "VJOURNAL")):
        props = ""
        if displayname:
            props += "<D:displayname>%s</D:displayname>" % xml_escape(displayname)
        if comps:
            props += ("<C:supported-calendar-component-set>%s"
                      "</C:supported-calendar-component-set>"
                      % "".join('<C:comp name="%s"/>' % c for c in comps))
        body = ('<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>%s</D:prop>'
                '</D:set></C:mkcalendar>' % props)
        st, _, _ = self.request("MKCALENDAR", path, body)
        return st

    def mkaddressbook(self, path, displayname=None):
        name = "<D:displayname>%s</D:displayname>" % xml_escape(displayname) if displayname else ""
        body = ('<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" '
                'xmlns:A="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype>'
                '<D:collection/><A:addressbook/></D:resourcetype>%s</D:prop></D:set>'
                '</D:mkcol>' % name)
        st, _, _ = self.request("MKCOL", path, body)
        return st

    def propfind(self, path, depth, props):
        """(status, [(decoded href, {"{ns}name": element})]) for the 200 props."""
        body = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:caldav" '
                'xmlns:A="urn:ietf:params:xml:ns:carddav" '
                'xmlns:CS="http://calendarserver.org/ns/"><D:prop>%s</D:prop></D:propfind>'
                % "".join("<%s/>" % p for p in props))
        st, _, data = self.request("PROPFIND", path, body, {"Depth": str(depth)})
        if st != 207:
            return st, []
        out = []
        for resp in ET.fromstring(data).findall("D:response", NS):
            href = urllib.parse.unquote(resp.find("D:href", NS).text)
            found = {}
            for ps in resp.findall("D:propstat", NS):
                status = ps.find("D:status", NS).text
                if " 200 " in status:
                    for p in ps.find("D:prop", NS):
                        found[p.tag] = p
            out.append((href, found))
        return st, out

    def exists(self, path):
        """Whether the server has path (a 207 holding a 404 says no, as
        Xandikos does)."""
        body = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
                '<D:prop><D:resourcetype/></D:prop></D:propfind>')
        st, _, data = self.request("PROPFIND", path, body, {"Depth": "0"})
        if st == 404:
            return False
        if st != 207:
            raise ServerError("PROPFIND %s: %d" % (path, st))
        for resp in ET.fromstring(data).findall("D:response", NS):
            s = resp.find("D:status", NS)
            if s is not None and " 404 " in s.text:
                return False
        return True

    def etags(self, collection):
        """{decoded href: etag} of the members of a collection."""
        st, rs = self.propfind(collection, 1, ["D:getetag", "D:resourcetype"])
        if st != 207:
            raise ServerError("PROPFIND %s: %d" % (collection, st))
        out = {}
        for href, props in rs:
            rt = props.get("{DAV:}resourcetype")
            if rt is not None and rt.find("D:collection", NS) is not None:
                continue
            e = props.get("{DAV:}getetag")
            out[href] = e.text if e is not None else None
        return out

    def sync_token(self, collection):
        st, rs = self.propfind(collection, 0, ["D:sync-token"])
        for href, props in rs:
            t = props.get("{DAV:}sync-token")
            if t is not None:
                return t.text
        return None


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


# --- the server -----------------------------------------------------------------------

def make_basedir(prefix="mailfs-radicale-"):
    """A new directory under /tmp; the caller removes it."""
    return tempfile.mkdtemp(prefix=prefix)


class Radicale:
    """One Radicale instance in basedir. Not started until start()."""

    host = "127.0.0.1"

    def __init__(self, basedir, users={"alice": "secret"}, port=None, ssl=False, fsync=False):
        """fsync: False (the default) turns off Radicale's fsync of every
        file it writes (its own test suite does the same): tests need no
        durability, and on a busy disk the syncs cost seconds."""
        self.basedir = os.path.abspath(str(basedir))
        self.fsync = fsync
        self.users = dict(users)
        self.port = port
        self._fixed_port = port is not None
        self.ssl = ssl
        self.ca_file = self.cert_file = self.key_file = None
        self.storage = os.path.join(self.basedir, "collections")
        self.conf = os.path.join(self.basedir, "radicale.conf")
        self.users_file = os.path.join(self.basedir, "users")
        self.log_path = os.path.join(self.basedir, "radicale.log")
        self.pid = None
        self._proc = None
        self.start_seconds = None

    @property
    def url(self):
        return "%s://%s:%d/" % ("https" if self.ssl else "http", self.host, self.port)

    def collection_dir(self, path):
        """Where a collection (a decoded path such as /alice/cal/) is stored."""
        return os.path.join(self.storage, "collection-root", path.strip("/"))

    def _write_config(self):
        with open(self.users_file, "w") as f:
            for u, p in self.users.items():
                f.write("%s:%s\n" % (u, p))
        lines = ["[server]", "hosts = %s:%d" % (self.host, self.port),
                 "max_connections = 20", "timeout = 30"]
        if self.ssl:
            lines += ["ssl = True", "certificate = %s" % self.cert_file,
                      "key = %s" % self.key_file]
        lines += ["[auth]", "type = htpasswd", "htpasswd_filename = %s" % self.users_file,
                  "htpasswd_encryption = plain", "delay = 0",
                  "[rights]", "type = owner_only",
                  "[storage]", "filesystem_folder = %s" % self.storage,
                  "[web]", "type = none",
                  "[logging]", "level = warning", "mask_passwords = True"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        t0 = time.monotonic()
        if self.pid and alive(self.pid):
            raise ServerError("already running (pid %d)" % self.pid)
        os.makedirs(self.storage, exist_ok=True)
        if self.ssl:
            self.ca_file, self.cert_file, self.key_file = make_ca_and_cert(
                os.path.join(self.basedir, "tls"))
        for attempt in range(20):
            if not self._fixed_port:
                self.port = free_port()
            self._write_config()
            offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            if self.fsync:
                cmd = [PYTHON, "-m", "radicale", "--config", self.conf]
            else:
                cmd = [PYTHON, "-c", NO_FSYNC_LAUNCHER, "--config", self.conf]
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                    start_new_session=True, cwd=self.basedir)
            self.pid = self._proc.pid
            if self._wait_ready(10):
                break
            rc = self._proc.poll()
            text = self._read_from(offset)
            if rc is None:
                self.stop()
                raise ServerError("radicale did not answer on port %d:\n%s" % (self.port, text))
            self.pid = self._proc = None
            if "in use" in text and not self._fixed_port:
                continue
            raise ServerError("radicale exited with %d:\n%s" % (rc, text))
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
                st, _, _ = self.client(None).request("OPTIONS", "/")
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
        stop_process(self._proc, self.pid, self.conf)
        self.pid = None
        self._proc = None

    def running(self):
        return bool(self.pid and alive(self.pid))

    def client(self, user="alice", password=None):
        """A DavClient as user (None: no credentials)."""
        ctx = None
        if self.ssl:
            ctx = ssl_mod.create_default_context(cafile=self.ca_file)
        if user is None:
            return DavClient(self.host, self.port, ssl_context=ctx)
        if password is None:
            password = self.users[user]
        return DavClient(self.host, self.port, user, password, ctx)

    def make_calendar(self, path, displayname=None, comps=("VEVENT", "VTODO", "VJOURNAL"),
                      user="alice"):
        st = self.client(user).mkcalendar(path, displayname, comps)
        if st != 201:
            raise ServerError("MKCALENDAR %s: %d" % (path, st))

    def make_addressbook(self, path, displayname=None, user="alice"):
        st = self.client(user).mkaddressbook(path, displayname)
        if st != 201:
            raise ServerError("MKCOL %s: %d" % (path, st))

    def put(self, path, data, user="alice", **kw):
        """PUT through HTTP: (status, etag)."""
        return self.client(user).put(path, data, **kw)

    def bulk_put(self, collection, items):
        """Many items at once, written straight into the storage of an
        existing collection ({name: bytes}); Radicale reads them on the next
        request. Thousands of PUTs would take 10 s and more."""
        d = self.collection_dir(collection)
        if not os.path.isdir(d):
            raise ServerError("no collection %s" % collection)
        for name, data in items.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)

    def info(self):
        return {"host": self.host, "port": self.port, "url": self.url, "ssl": self.ssl,
                "ca_file": self.ca_file, "users": self.users, "basedir": self.basedir,
                "storage": self.storage, "conf": self.conf, "log": self.log_path,
                "pid": self.pid}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def _cli(argv):
    ap = argparse.ArgumentParser(prog="radicale.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a server in DIR and write DIR/server.json")
    st.add_argument("--dir", required=True)
    st.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    st.add_argument("--ssl", action="store_true")
    st.add_argument("--port", type=int)
    sp = sub.add_parser("stop", help="stop the server in DIR")
    sp.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    d = os.path.abspath(a.dir)
    state = os.path.join(d, "server.json")
    if a.cmd == "start":
        os.makedirs(d, exist_ok=True)
        users = dict(u.split(":", 1) for u in a.user) or {"alice": "secret"}
        srv = Radicale(d, users=users, port=a.port, ssl=a.ssl)
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
        print("radicale.py: no server in %s (%s)" % (d, e), file=sys.stderr)
        return 1
    stop_process(None, info.get("pid"), info["conf"])
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
