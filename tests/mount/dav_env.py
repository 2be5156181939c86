"""Helpers of the DAV mount tests (tests/mount/test_dav_*.py): a real
Radicale or Xandikos per test module, an account for each test, the items
the tests put on the server, and the checks of the server side through
DavClient (tests/servers/radicale.py), never through mailfs.

Servers (DESIGN section 9):
- Radicale: one per module (parametrised); every test gets its own user
  (Radicale reads its htpasswd file at each login), so tests never see each
  other's collections. The user's principal /uN/ is also the home of its
  calendars and address books; the tests make /uN/cal/ (VEVENT, VTODO,
  VJOURNAL) and /uN/book/ first, so they are the defaults ("first by
  href": Radicale names no schedule-default-calendar-URL).
- Xandikos 0.2.8 has no authentication and one principal (/user/) per
  process, so a module-wide server cannot keep tests apart: every test gets
  a new one (about 0.3 s). Its --defaults make /user/calendars/calendar/ and
  /user/contacts/addressbook/. Differences the tests allow for: it
  re-serialises iCalendar and vCard (compare with what GET returns), it
  ignores the component set of MKCALENDAR (a calendar made for VEVENT alone
  also shows under Tasks/ and Notes/), it has no MOVE (mailfs does PUT +
  DELETE) and it answers a stale sync token with 500.

Use in a test module:

    from dav_env import dav_server, dav, ...   # the fixtures
    def test_x(dav, mount, run_mailfs):
        dav.put(dav.cal + "e1.ics", make_event("e1", "Standup"))
        m = dav.mount(mount, run_mailfs)       # mounted and synced once

`dav` writes the account config (caldav and carddav at the server's root
URL, so discovery runs: well-known, current-user-principal, home sets).
The daemon's log (MAILFS_LOG=debug, -f) is in tmp_path/mailfs-N.stderr; a
daemonised mount would write it to STORE/mailfs.log."""

import itertools
import os
import shutil
import subprocess

import pytest

from mailfs_testlib import SLOW, wait_until, while_alive, xattr  # also sets sys.path

import radicale as radlib  # noqa: E402  (tests/servers)
import xandikos as xanlib  # noqa: E402

from radicale import DavClient, make_event, make_vcard  # noqa: E402,F401  (re-exported)

SERVERS = ("radicale", "xandikos")
SYNC = 20   # s: `mailfs sync` of a small account (sanitizer build included via SLOW)
PUSH = 10   # s: a local change reaches the server (the contract says about a second)

_users = itertools.count(1)


# --- items ---------------------------------------------------------------------------

def ical(*lines):
    """A VCALENDAR around the given content lines, CRLF, as bytes."""
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mailfs tests//EN"]
    for x in lines:
        out += [y for y in x.split("\n") if y]
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()


def esc(text):
    """An iCalendar TEXT value escaped (RFC 5545 3.3.11)."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def vevent(uid, summary, start="20260105T100000Z", extra=""):
    lines = ["BEGIN:VEVENT", "UID:" + uid]
    if len(start) == 8:
        lines.append("DTSTART;VALUE=DATE:" + start)
    else:
        lines.append("DTSTART:" + start)
    lines += ["DTSTAMP:20260101T000000Z", "SUMMARY:" + esc(summary)]
    lines += [x for x in extra.split("\n") if x]
    lines.append("END:VEVENT")
    return "\n".join(lines)


def event(uid, summary, start="20260105T100000Z", extra=""):
    """An event; start YYYYMMDD makes an all-day event."""
    return ical(vevent(uid, summary, start, extra))


def todo(uid, summary, due=None, extra=""):
    lines = ["BEGIN:VTODO", "UID:" + uid, "DTSTAMP:20260101T000000Z", "SUMMARY:" + esc(summary)]
    if due:
        lines.append(("DUE;VALUE=DATE:" if len(due) == 8 else "DUE:") + due)
    lines += [x for x in extra.split("\n") if x]
    lines.append("END:VTODO")
    return ical("\n".join(lines))


def journal(uid, summary, description, extra=""):
    """A VJOURNAL (a note). description: the text, LF line ends (escaped here)."""
    lines = ["BEGIN:VJOURNAL", "UID:" + uid, "DTSTAMP:20260101T000000Z",
             "DTSTART;VALUE=DATE:20260105", "SUMMARY:" + esc(summary),
             "DESCRIPTION:" + esc(description)]
    lines += [x for x in extra.split("\n") if x]
    lines.append("END:VJOURNAL")
    return ical("\n".join(lines))


def vcard(uid, fn, extra=""):
    """A vCard 3.0 (N derived from FN), CRLF, as bytes."""
    parts = fn.split(" ", 1)
    n = "%s;%s;;;" % (parts[-1], parts[0] if len(parts) > 1 else "")
    lines = ["BEGIN:VCARD", "VERSION:3.0", "UID:" + uid, "FN:" + fn, "N:" + n]
    lines += [x for x in extra.split("\n") if x]
    lines.append("END:VCARD")
    return ("\r\n".join(lines) + "\r\n").encode()


def unfold(data):
    """Content lines of an iCalendar or vCard text, unfolded, as str."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    text = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    return [x for x in text.split("\n") if x]


def prop(data, name, component=None):
    """The values of a property (by name, parameters ignored) in an
    iCalendar/vCard text, optionally only inside BEGIN:component."""
    out, inside = [], component is None
    for line in unfold(data):
        if component:
            if line == "BEGIN:" + component:
                inside = True
                continue
            if line == "END:" + component:
                inside = False
                continue
        if not inside:
            continue
        head, _, value = line.partition(":")
        if head.split(";")[0].upper() == name.upper():
            out.append(value)
    return out


def ical_text(value):
    """An iCalendar TEXT value decoded (\\n, \\, \\; \\\\)."""
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            n = value[i + 1]
            out.append("\n" if n in "nN" else n)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# --- servers -------------------------------------------------------------------------

class _RadicaleHost:
    """One Radicale for a module; a new user per test."""

    kind = "radicale"

    def __init__(self):
        self.base = radlib.make_basedir("mailfs-davmnt-rad-")
        self.server = radlib.Radicale(self.base, users={"admin": "admin"})
        self.server.start()

    def account(self, tmp_path):
        n = next(_users)
        user, pw = "u%d" % n, "pw-%d" % n
        self.server.users[user] = pw
        tmp = self.server.users_file + ".tmp"
        with open(tmp, "w") as f:
            for u, p in self.server.users.items():
                f.write("%s:%s\n" % (u, p))
        os.replace(tmp, self.server.users_file)
        return DavAccount(self, self.server, user, pw)

    def release(self, acc, tmp_path):
        try:
            shutil.copy(self.server.log_path, os.path.join(str(tmp_path), "radicale.log"))
        except OSError:
            pass

    def close(self):
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class _XandikosHost:
    """A new Xandikos per test (one principal per process)."""

    kind = "xandikos"

    def __init__(self):
        self.running = []

    def account(self, tmp_path):
        base = radlib.make_basedir("mailfs-davmnt-xan-")
        srv = xanlib.Xandikos(base)
        self.running.append((srv, base))
        srv.start()
        return DavAccount(self, srv, "alice", "unused")

    def release(self, acc, tmp_path):
        srv = acc.server
        try:
            shutil.copy(srv.log_path, os.path.join(str(tmp_path), "xandikos.log"))
        except OSError:
            pass
        try:
            srv.stop()
        finally:
            shutil.rmtree(srv.basedir, ignore_errors=True)
            self.running = [x for x in self.running if x[0] is not srv]

    def close(self):
        for srv, base in self.running:
            try:
                srv.stop()
            finally:
                shutil.rmtree(base, ignore_errors=True)


class DavAccount:
    """The server side of one test's account: paths are decoded
    ("/u3/cal/é.ics"), collection paths end in '/'."""

    def __init__(self, host, server, user, password):
        self.kind = host.kind
        self.server = server
        self.user, self.password = user, password
        if self.kind == "radicale":
            self.cal_home = self.book_home = "/%s/" % user
            self.cal = self.cal_home + "cal/"
            self.book = self.book_home + "book/"
            server.make_calendar(self.cal, "Personal", user=user)
            server.make_addressbook(self.book, "Contacts", user=user)
        else:
            self.cal_home = "/user/calendars/"
            self.book_home = "/user/contacts/"
            self.cal = xanlib.DEFAULT_CALENDAR
            self.book = xanlib.DEFAULT_ADDRESSBOOK
        self.mfenv = None

    # -- server access (an independent client) --

    @property
    def url(self):
        return self.server.url

    def client(self):
        if self.kind == "radicale":
            return self.server.client(self.user, self.password)
        return self.server.client()

    @property
    def has_move(self):
        return self.kind == "radicale"

    def calendar(self, slug, displayname=None, comps=("VEVENT", "VTODO", "VJOURNAL")):
        """A new calendar in the home set; returns its path. Slugs sort after
        the default's ("cal", "calendar"), so the default stays first."""
        path = self.cal_home + slug + "/"
        st = self.client().mkcalendar(path, displayname, comps)
        assert st == 201, "MKCALENDAR %s: %d" % (path, st)
        return path

    def addressbook(self, slug, displayname=None):
        path = self.book_home + slug + "/"
        st = self.client().mkaddressbook(path, displayname)
        assert st == 201, "MKCOL %s: %d" % (path, st)
        return path

    def put(self, path, data, **kw):
        """PUT, asserting success; returns the ETag. ctype from the name."""
        if "ctype" not in kw and path.endswith(".vcf"):
            kw["ctype"] = "text/vcard; charset=utf-8"
        st, etag = self.client().put(path, data, **kw)
        assert st in (200, 201, 204), "PUT %s: %d" % (path, st)
        return etag

    def get(self, path):
        """The server's bytes of an item (asserting 200)."""
        st, _, body = self.client().get(path)
        assert st == 200, "GET %s: %d" % (path, st)
        return body

    def etag(self, path):
        st, etag, _ = self.client().get(path)
        assert st == 200, "GET %s: %d" % (path, st)
        return etag

    def delete(self, path):
        st = self.client().delete(path)
        assert st in (200, 204), "DELETE %s: %d" % (path, st)

    def exists(self, path):
        return self.client().exists(path)

    def members(self, collection):
        """{decoded href: etag} of a collection's items."""
        return self.client().etags(collection)

    def items(self, collection):
        """{last segment of the href: bytes} of every item of a collection."""
        c = self.client()
        out = {}
        for href in c.etags(collection):
            st, _, body = c.get(href)
            assert st == 200, "GET %s: %d" % (href, st)
            out[href.rstrip("/").rsplit("/", 1)[-1]] = body
        return out

    def by_uid(self, collection):
        """{UID: (href segment, bytes)} of a collection's items."""
        out = {}
        for name, body in self.items(collection).items():
            uids = prop(body, "UID")
            out[uids[0] if uids else None] = (name, body)
        return out

    def collections(self, home, kind=None):
        """{decoded href: displayname or None} of the collections in a home;
        kind "calendar" or "addressbook" keeps those alone."""
        st, rs = self.client().propfind(home, 1, ["D:displayname", "D:resourcetype"])
        assert st == 207, "PROPFIND %s: %d" % (home, st)
        tags = {"calendar": "{urn:ietf:params:xml:ns:caldav}calendar",
                "addressbook": "{urn:ietf:params:xml:ns:carddav}addressbook"}
        out = {}
        for href, props in rs:
            if href.rstrip("/") == home.rstrip("/"):
                continue
            rt = props.get("{DAV:}resourcetype")
            if rt is None or rt.find("D:collection", radlib.NS) is None:
                continue
            if kind and rt.find(tags[kind]) is None:
                continue
            d = props.get("{DAV:}displayname")
            out[href if href.endswith("/") else href + "/"] = d.text if d is not None else None
        return out

    def displayname(self, collection):
        st, rs = self.client().propfind(collection, 0, ["D:displayname"])
        assert st == 207, "PROPFIND %s: %d" % (collection, st)
        for _, props in rs:
            d = props.get("{DAV:}displayname")
            return d.text if d is not None else None
        return None

    def set_displayname(self, collection, name):
        """PROPPATCH DAV:displayname on the server."""
        body = ('<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:">'
                '<D:set><D:prop><D:displayname>%s</D:displayname></D:prop></D:set>'
                '</D:propertyupdate>' % radlib.xml_escape(name))
        st, _, data = self.client().request("PROPPATCH", collection, body)
        assert st == 207 and b" 200 " in data, "PROPPATCH %s: %d %r" % (collection, st, data)

    def bulk_put(self, collection, items):
        self.server.bulk_put(collection, items)

    # -- the mailfs side --

    def account_config(self, caldav=True, carddav=True, **extra):
        pw = self.mfenv.password_file(self.password, "pw-dav-" + self.user)
        acc = {}
        if caldav:
            acc["caldav"] = self.url if caldav is True else caldav
        if carddav:
            acc["carddav"] = self.url if carddav is True else carddav
        acc.update({"user": self.user, "password_command": "cat %s" % pw, "tls": "none",
                    "poll": "1"})
        acc.update({k: str(v) for k, v in extra.items()})
        return acc

    def configure(self, **kw):
        """(Re)write the config with this account as ACCOUNT; returns its path."""
        from mailfs_testlib import ACCOUNT
        return self.mfenv.write_config({ACCOUNT: self.account_config(**kw)})

    def store_dir(self):
        return self.mfenv.store()

    def mount(self, mount, run_mailfs, **kw):
        """Mount and wait for one whole sync pass (`mailfs sync MNT`)."""
        m = mount(**kw)
        sync(run_mailfs, m)
        return m


def sync(run_mailfs, m, timeout=SYNC):
    """`mailfs sync MOUNTPOINT`: returns when a pass is done."""
    rc, out, err = run_mailfs("sync", m.path, timeout=timeout)
    assert rc == 0, "mailfs sync %s failed (%d): %s%s" % (m.path, rc, out, err)
    return out


def mailfs_cmd(run_mailfs, *args):
    rc, out, err = run_mailfs(*args)
    assert rc == 0, "mailfs %s failed (%d): %s%s" % (" ".join(map(str, args)), rc, out, err)
    return out


@pytest.fixture(scope="module", params=SERVERS)
def dav_server(request):
    host = _RadicaleHost() if request.param == "radicale" else _XandikosHost()
    yield host
    host.close()


@pytest.fixture
def dav(dav_server, mailfs_env, tmp_path):
    """The server side of this test's account (DavAccount), its config
    written (caldav and carddav at the server's root URL)."""
    acc = dav_server.account(tmp_path)
    acc.mfenv = mailfs_env
    acc.configure()
    yield acc
    dav_server.release(acc, tmp_path)


# --- the mount side ------------------------------------------------------------------

def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def run(*argv, check=True, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=60 * SLOW, **kw)
    if check:
        assert r.returncode == 0, "%s: exit %d: %s" % (" ".join(map(str, argv)),
                                                       r.returncode, r.stderr)
    return r


def errno_of(fn, *args):
    """The errno fn(*args) fails with, or None when it succeeds."""
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return None


def state(path):
    try:
        return xattr(path, "user.sync.state")
    except OSError as e:
        return "<%s>" % os.strerror(e.errno)


def wait_state(m, path, want, timeout=PUSH):
    """Wait until user.sync.state of path is want (a string, or a callable
    on the state)."""
    ok = want if callable(want) else (lambda s: s == want)
    wait_until(while_alive(m, lambda: ok(state(path))), timeout * SLOW,
               what="user.sync.state of %s is %r (now %r)"
               % (os.path.basename(str(path)), want, state(path)))


def wait_for(m, predicate, what, timeout=PUSH):
    """wait_until while the daemon lives (a crash shows at once)."""
    return wait_until(while_alive(m, predicate), timeout * SLOW, interval=0.1, what=what)


def listing(path):
    """Sorted directory entries (files and dirs)."""
    return sorted(os.listdir(path))


def files(path):
    """Sorted names of the regular files in a directory."""
    return sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))


def log_tail(m, n=60):
    """The last lines of the daemon's log, for assert messages."""
    lines = m.stderr().splitlines()
    return "\n".join(lines[-n:])


__all__ = ["SERVERS", "SYNC", "PUSH", "DavAccount", "DavClient", "dav", "dav_server",
           "esc", "event", "vevent", "todo", "journal", "vcard", "ical", "prop", "ical_text",
           "unfold", "make_event", "make_vcard", "read", "write", "run", "errno_of",
           "state", "wait_state", "wait_for", "listing", "files", "log_tail", "sync",
           "mailfs_cmd"]
