"""Checks of the DAV test servers themselves (tests/servers/radicale.py and
xandikos.py) with http.client: fast start, authentication, TLS with their
own CA, bytes kept, bulk loading, no process left; and the server quirks a
client must cope with (DESIGN section 9), so that a server upgrade that
changes them is noticed."""

import json
import os
import shutil
import ssl
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import radicale  # noqa: E402
import xandikos  # noqa: E402

SYNC_REPORT = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
               '<D:sync-token>%s</D:sync-token><D:sync-level>1</D:sync-level>'
               '<D:prop><D:getetag/></D:prop></D:sync-collection>')


@pytest.fixture
def basedir():
    d = radicale.make_basedir("mailfs-davsrv-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def rad(basedir):
    srv = radicale.Radicale(basedir)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def xan(basedir):
    srv = xandikos.Xandikos(basedir)
    srv.start()
    yield srv
    srv.stop()


def _gone(pid):
    return not radicale.alive(pid)


def test_radicale_starts_fast_and_authenticates(basedir):
    srv = radicale.Radicale(basedir, users={"alice": "secret", "bob": "pw"})
    srv.start()
    pid = srv.pid
    try:
        assert srv.start_seconds < 3.0, srv.start_seconds
        st, _ = srv.client().propfind("/alice/", 0, ["D:current-user-principal"])
        assert st == 207
        st, _, _ = srv.client("alice", "wrong").request("PROPFIND", "/alice/", "",
                                                       {"Depth": "0"})
        assert st == 401
        st, _, _ = srv.client(None).request("PROPFIND", "/alice/", "", {"Depth": "0"})
        assert st == 401
        # owner-only rights: bob cannot read alice's collections
        srv.make_calendar("/alice/cal/")
        st, _, _ = srv.client("bob").request("PROPFIND", "/alice/cal/", "", {"Depth": "0"})
        assert st in (403, 404)
    finally:
        srv.stop()
    assert _gone(pid)


def test_radicale_keeps_bytes_and_bulk_loads(rad):
    rad.make_calendar("/alice/cal/", "Cal é")
    ev = radicale.make_event("u1", "Hello é")
    st, etag = rad.put("/alice/cal/my event.ics", ev, if_none_match="*")
    assert st == 201 and etag
    st, etag2, body = rad.client().get("/alice/cal/my event.ics")
    # Radicale re-serialises (property order): what it holds is what GET says
    assert st == 200 and etag2 == etag and "SUMMARY:Hello é\r\n".encode() in body
    assert sorted(body.split(b"\r\n")) == sorted(ev.split(b"\r\n"))
    rad.bulk_put("/alice/cal/", {"b%d.ics" % i: radicale.make_event("b%d" % i)
                                 for i in range(50)})
    etags = rad.client().etags("/alice/cal/")
    assert len(etags) == 51 and "/alice/cal/my event.ics" in etags
    st, _, body = rad.client().get("/alice/cal/b7.ics")
    assert st == 200 and b"UID:b7\r\n" in body


def test_radicale_https_with_own_ca(basedir):
    srv = radicale.Radicale(basedir, ssl=True)
    srv.start()
    try:
        assert srv.url.startswith("https://")
        st, _ = srv.client().propfind("/alice/", 0, ["D:current-user-principal"])
        assert st == 207
        bad = radicale.DavClient(srv.host, srv.port, "alice", "secret",
                                 ssl.create_default_context())
        with pytest.raises(ssl.SSLError):
            bad.request("OPTIONS", "/")
    finally:
        srv.stop()


def test_radicale_quirks(rad):
    """The status codes mailfs must understand (reported in the DAV layer's
    notes): 412 for both preconditions, 403 + valid-sync-token for a bad
    token, 201 for MOVE, 502 for a MOVE whose Destination is only a path, and
    a MOVE that keeps a percent-encoded Destination encoded in the name."""
    c = rad.client()
    rad.make_calendar("/alice/cal/")
    rad.make_calendar("/alice/other/")
    st, etag = c.put("/alice/cal/a.ics", radicale.make_event("a"), if_none_match="*")
    assert st == 201
    assert c.put("/alice/cal/a.ics", radicale.make_event("a"), if_none_match="*")[0] == 412
    assert c.put("/alice/cal/a.ics", radicale.make_event("a", "x"), if_match='"stale"')[0] == 412
    assert c.delete("/alice/cal/a.ics", if_match='"stale"') == 412
    st, _, body = c.request("REPORT", "/alice/cal/", SYNC_REPORT % "http://radicale.org/ns/sync/x",
                            {"Depth": "0"})
    assert st == 403 and b"valid-sync-token" in body
    dest = "http://%s:%d/alice/other/a.ics" % (rad.host, rad.port)
    st, _, _ = c.request("MOVE", "/alice/cal/a.ics", None,
                         {"Destination": dest, "Overwrite": "F"})
    assert st == 201
    st, _, _ = c.request("MOVE", "/alice/other/a.ics", None,
                         {"Destination": "/alice/cal/a.ics", "Overwrite": "F"})
    assert st == 502
    # a percent-encoded Destination is stored under its encoded name
    dest = "http://%s:%d/alice/cal/b%%20c.ics" % (rad.host, rad.port)
    st, _, _ = c.request("MOVE", "/alice/other/a.ics", None,
                         {"Destination": dest, "Overwrite": "F"})
    assert st == 201
    assert sorted(os.listdir(rad.collection_dir("/alice/cal/"))) == [
        ".Radicale.cache", ".Radicale.props", "b%20c.ics"]


def test_xandikos_starts_with_defaults(basedir):
    srv = xandikos.Xandikos(basedir)
    srv.start()
    pid = srv.pid
    try:
        assert srv.start_seconds < 5.0, srv.start_seconds
        c = srv.client()
        st, rs = c.propfind(xandikos.PRINCIPAL, 0, ["C:calendar-home-set",
                                                    "A:addressbook-home-set"])
        assert st == 207
        props = rs[0][1]
        home = props["{urn:ietf:params:xml:ns:caldav}calendar-home-set"]
        assert home.find("D:href", radicale.NS).text == "/user/calendars/"
        assert c.etags(xandikos.DEFAULT_CALENDAR) == {}
        assert c.etags(xandikos.DEFAULT_ADDRESSBOOK) == {}
    finally:
        srv.stop()
    assert _gone(pid)


def test_xandikos_keeps_bytes_and_bulk_loads(xan):
    cal = xandikos.DEFAULT_CALENDAR
    ev = radicale.make_event("u1", "Hello é")
    st, etag = xan.put(cal + "one é.ics", ev, if_none_match="*")
    assert st == 201 and etag
    st, etag2, body = xan.client().get(cal + "one é.ics")
    assert st == 200 and etag2 == etag and body.replace(b"\r\n", b"\n").count(b"\n") >= 8
    xan.bulk_put(cal, {"b%d.ics" % i: radicale.make_event("b%d" % i) for i in range(50)})
    etags = xan.client().etags(cal)
    assert len(etags) == 51
    st, _, body = xan.client().get(cal + "b7.ics")
    assert st == 200 and b"UID:b7" in body


def test_xandikos_quirks(xan):
    """A refused PUT answered with 207 holding 412, 500 for an unknown sync
    token, no MOVE, a stale If-Match on DELETE refused with 412."""
    c = xan.client()
    cal = xandikos.DEFAULT_CALENDAR
    st, etag = c.put(cal + "a.ics", radicale.make_event("a"), if_none_match="*")
    assert st == 201
    assert c.put(cal + "a.ics", radicale.make_event("a"), if_none_match="*")[0] == 412
    assert c.put(cal + "a.ics", radicale.make_event("a", "x"), if_match='"stale"')[0] == 412
    # the same UID under another name: 207 Multi-Status with the real 412
    st, _, body = c.request("PUT", cal + "dup.ics", radicale.make_event("a"),
                            {"Content-Type": "text/calendar", "If-None-Match": "*"})
    assert st == 207 and b"412" in body and b"no-uid-conflict" in body
    assert c.delete(cal + "a.ics", if_match='"stale"') == 412
    st, _, _ = c.request("REPORT", cal, SYNC_REPORT % ("0" * 40), {"Depth": "0"})
    assert st == 500
    st, _, _ = c.request("MOVE", cal + "a.ics", None,
                         {"Destination": xan.url.rstrip("/") + cal + "b.ics",
                          "Overwrite": "F"})
    assert st == 405


@pytest.mark.parametrize("name", ["radicale", "xandikos"])
def test_cli_start_stop(basedir, name):
    script = os.path.join(HERE, name + ".py")
    d = os.path.join(basedir, "srv")
    out = subprocess.run(["/usr/bin/python3", script, "start", "--dir", d], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    info = json.loads(out)
    with open(os.path.join(d, "server.json")) as f:
        assert json.load(f)["port"] == info["port"]
    pid = info["pid"]
    assert radicale.alive(pid)
    c = radicale.DavClient("127.0.0.1", info["port"], "alice", "secret")
    st, _, _ = c.request("OPTIONS", "/")
    assert st == 200
    subprocess.run(["/usr/bin/python3", script, "stop", "--dir", d], check=True, timeout=60)
    assert _gone(pid)
