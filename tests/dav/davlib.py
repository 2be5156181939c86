"""Helpers of the DAV protocol-layer tests: running tests/tools/dav_probe
(the C layer of sync/dav.h behind a command line) and one Target per real
server, which knows its URLs, its credentials and how to make fresh
collections with an independent client (tests/servers/radicale.DavClient)."""

import itertools
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "servers"))

import radicale as radicale_srv  # noqa: E402
import xandikos as xandikos_srv  # noqa: E402


def probe_path():
    """DAV_PROBE, else the sanitizer build's, else the optimised build's."""
    env = os.environ.get("DAV_PROBE")
    if env:
        return env
    for b in ("build-asan", "build"):
        p = os.path.join(TOP, b, "tests", "tools", "dav_probe")
        if os.access(p, os.X_OK):
            return p
    return os.path.join(TOP, "build-asan", "tests", "tools", "dav_probe")


PROBE = probe_path()
__all__ = ["PROBE", "ProbeResult", "Target", "radicale_srv", "xandikos_srv", "run_probe",
           "check_sanitizers"]
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


class ProbeResult:
    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = []
        for line in proc.stdout.splitlines():
            self.lines.append(json.loads(line))
        self.final = self.lines[-1] if self.lines else {}
        self.items = self.lines[:-1]

    @property
    def ok(self):
        return self.final.get("ok") is True

    def __repr__(self):
        return "ProbeResult(rc=%d, final=%r, stderr=%r)" % (self.rc, self.final,
                                                            self.stderr[-2000:])


def check_sanitizers(text):
    for m in SANITIZER_MARKS:
        assert m not in text, "sanitizer report from dav_probe:\n" + text[-6000:]


def run_probe(args, input=None, timeout=120, env=None):
    """Run dav_probe with args (a list): a ProbeResult. Sanitizer reports
    fail the test; the exit status is the caller's to check."""
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if env:
        e.update(env)
    proc = subprocess.run([PROBE] + list(args), input=input, capture_output=True, text=True,
                          timeout=timeout, env=e)
    check_sanitizers(proc.stderr)
    res = ProbeResult(args, proc)
    if res.rc == 0:
        assert res.ok, res
    elif res.rc == 1:
        assert res.final.get("ok") is False, res
    return res


_counter = itertools.count(1)


class Target:
    """One real server as the probe sees it."""

    def __init__(self, name, server, workdir):
        self.name = name
        self.server = server
        self.workdir = workdir
        if name == "radicale":
            self.user, self.password = "alice", server.users["alice"]
            self.principal = "/alice/"
            self.cal_home = self.book_home = "/alice/"
        else:
            self.user, self.password = None, None
            self.principal = xandikos_srv.PRINCIPAL
            self.cal_home = "/user/calendars/"
            self.book_home = "/user/contacts/"
        self.password_file = os.path.join(workdir, "%s.password" % name)
        with open(self.password_file, "w") as f:
            f.write("%s\n" % (self.password or ""))
        os.chmod(self.password_file, 0o600)

    @property
    def url(self):
        return self.server.url

    @property
    def has_auth(self):
        return self.user is not None

    @property
    def has_move(self):
        return self.name == "radicale"

    def client(self):
        return self.server.client()

    def unique(self, prefix):
        return "%s-%d" % (prefix, next(_counter))

    def new_calendar(self, displayname=None, comps=("VEVENT", "VTODO", "VJOURNAL"), name=None):
        path = "%s%s/" % (self.cal_home, name or self.unique("cal"))
        self.server.make_calendar(path, displayname, comps)
        return path

    def new_book(self, displayname=None, name=None):
        path = "%s%s/" % (self.book_home, name or self.unique("book"))
        self.server.make_addressbook(path, displayname)
        return path

    def base_args(self, url=None, carddav=False, auth=True, tls_none=True):
        a = ["--url", url or self.url]
        if tls_none:
            a.append("--tls-none")
        if auth and self.user:
            a += ["--user", self.user, "--password-file", self.password_file]
        if carddav:
            a.append("--carddav")
        return a

    def probe(self, *args, url=None, carddav=False, input=None, auth=True, tls_none=True,
              timeout=120):
        return run_probe(self.base_args(url, carddav, auth, tls_none) + list(args),
                         input=input, timeout=timeout)

    def must(self, *args, **kw):
        """probe() that must succeed."""
        r = self.probe(*args, **kw)
        assert r.rc == 0 and r.ok, r
        return r
