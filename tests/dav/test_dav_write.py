"""Writes (sync/dav.h dav_put, dav_delete, dav_move, dav_mkcol) through
dav_probe against Radicale and Xandikos, checked with an independent
client: create and update with preconditions, 412 on a stale ETag in
whatever form the server sends it (Xandikos wraps refusals in a 207), DELETE
refused on a stale If-Match, MOVE where the server has it and 405 where it
has not, MKCALENDAR and extended MKCOL, names with spaces and non-ASCII
letters."""

import os

from davlib import radicale_srv, run_probe
from fakedav import multistatus, status_response

make_event = radicale_srv.make_event


def write_file(dav, name, data):
    p = os.path.join(dav.workdir, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def test_put_create_update_and_conflicts(dav):
    cal = dav.new_calendar()
    c = dav.client()
    href = cal + "Team meeting \u00e9.ics"
    v1 = make_event("put-%s" % dav.name, "First")
    f1 = write_file(dav, "v1.ics", v1)
    r = dav.must("put", href, f1, "--create")
    assert r.final["status"] == 201
    st, etag, body = c.get(href)
    assert st == 200 and r.final["etag"] == etag
    assert b"SUMMARY:First\r\n" in body

    # create again: the item exists
    r = dav.probe("put", href, f1, "--create")
    assert r.rc == 1 and r.final["status"] == 412
    assert r.final["code"] == "server" and r.final["scope"] == "item"
    assert r.final["retry"] == "never"

    # update with the current ETag
    v2 = make_event("put-%s" % dav.name, "Second")
    f2 = write_file(dav, "v2.ics", v2)
    r = dav.must("put", href, f2, "--if-match", etag)
    assert r.final["status"] in (200, 201, 204)
    st, etag2, body = c.get(href)
    assert etag2 != etag and b"SUMMARY:Second\r\n" in body
    assert r.final["etag"] in (None, etag2)

    # update with the old ETag: refused, the server's copy untouched
    f3 = write_file(dav, "v3.ics", make_event("put-%s" % dav.name, "Third"))
    r = dav.probe("put", href, f3, "--if-match", etag)
    assert r.rc == 1 and r.final["status"] == 412
    assert c.get(href)[1] == etag2


def test_put_same_uid_elsewhere(dav):
    """Radicale: 409 no-uid-conflict; Xandikos: 207 holding 412
    no-uid-conflict. Both are refusals with the server's reason."""
    cal = dav.new_calendar()
    ev = make_event("dup-%s" % dav.name)
    assert dav.client().put(cal + "one.ics", ev)[0] == 201
    f = write_file(dav, "dup.ics", ev)
    r = dav.probe("put", cal + "two.ics", f, "--create")
    assert r.rc == 1
    assert r.final["precondition"] == "no-uid-conflict"
    assert r.final["status"] == (409 if dav.name == "radicale" else 412)
    assert "no-uid-conflict" in r.final["message"]
    assert dav.client().get(cal + "two.ics")[0] == 404


def test_put_invalid_data(dav):
    cal = dav.new_calendar()
    f = write_file(dav, "bad.ics", b"this is not iCalendar\r\n")
    r = dav.probe("put", cal + "bad.ics", f, "--create")
    assert r.rc == 1 and 400 <= r.final["status"] < 500
    if dav.name == "xandikos":
        assert r.final["precondition"] == "valid-calendar-data"
    assert dav.client().get(cal + "bad.ics")[0] == 404


def test_delete(dav):
    cal = dav.new_calendar()
    c = dav.client()
    href = cal + "to delete \u00fc.ics"
    st, etag = c.put(href, make_event("del-%s" % dav.name))
    assert st == 201
    r = dav.probe("delete", href, "--if-match", '"stale"')
    assert r.rc == 1 and r.final["status"] == 412
    assert c.get(href)[0] == 200
    r = dav.must("delete", href, "--if-match", c.get(href)[1])
    assert r.final["status"] in (200, 204)
    assert c.get(href)[0] == 404
    r = dav.probe("delete", href)
    assert r.rc == 1 and r.final["status"] == 404


def test_move(dav):
    src_cal = dav.new_calendar()
    dst_cal = dav.new_calendar()
    c = dav.client()
    ev = make_event("move-%s" % dav.name)
    assert c.put(src_cal + "m \u00e9.ics", ev)[0] == 201
    r = dav.must("move", src_cal + "m \u00e9.ics", dst_cal + "moved.ics")
    if not dav.has_move:
        # Xandikos has no MOVE: the caller falls back to PUT + DELETE
        assert r.final["result"] == "fallback" and r.final["status"] == 405
        assert c.get(src_cal + "m \u00e9.ics")[0] == 200
        return
    assert r.final["result"] == "ok" and r.final["status"] == 201
    assert c.get(src_cal + "m \u00e9.ics")[0] == 404
    assert c.get(dst_cal + "moved.ics")[0] == 200
    # Overwrite: F onto an existing item
    assert c.put(src_cal + "other.ics", make_event("move2-%s" % dav.name))[0] == 201
    assert c.put(dst_cal + "taken.ics", make_event("move3-%s" % dav.name))[0] == 201
    r = dav.probe("move", src_cal + "other.ics", dst_cal + "taken.ics")
    assert r.rc == 1 and r.final["status"] == 412
    assert c.get(src_cal + "other.ics")[0] == 200


def test_move_to_encoded_name_falls_back(dav):
    """Radicale 3.1.8 stores a MOVE's percent-encoded Destination under the
    still-encoded name, so such moves are not sent at all."""
    cal = dav.new_calendar()
    c = dav.client()
    assert c.put(cal + "a.ics", make_event("move4-%s" % dav.name))[0] == 201
    before = c.etags(cal)
    for to in ("b \u00e9.ics", "b%2Fc.ics"):
        r = dav.must("move", cal + "a.ics", cal + to)
        assert r.final["result"] == "fallback" and r.final["status"] == 0
    assert c.etags(cal) == before


def test_mkcol_and_delete_collection(dav):
    path = dav.cal_home + "New \u00e9 %d/" % os.getpid()
    r = dav.must("mkcol", path, "Trips & \u00e9t\u00e9", "VTODO,VJOURNAL")
    assert r.final["status"] == 201
    st, rs = dav.client().propfind(path, 0, ["D:displayname", "C:supported-calendar-component-set",
                                             "D:resourcetype"])
    assert st == 207
    props = rs[0][1]
    assert props["{DAV:}displayname"].text == "Trips & \u00e9t\u00e9"
    comps = {x.get("name") for x in
             props["{urn:ietf:params:xml:ns:caldav}supported-calendar-component-set"]}
    if dav.name == "radicale":
        assert comps == {"VTODO", "VJOURNAL"}
    else:
        assert comps >= {"VTODO", "VJOURNAL"}  # Xandikos ignores the set
    # it shows up in discovery
    found = [x for x in dav.must("discover").items if x["collection"] == path]
    assert found and found[0]["displayname"] == "Trips & \u00e9t\u00e9"
    # again: the collection exists
    r = dav.probe("mkcol", path, "Again", "VEVENT")
    assert r.rc == 1 and 400 <= r.final["status"] < 500
    # a collection is deleted like an item
    r = dav.must("delete", path)
    assert not dav.client().exists(path)


def test_mkcol_address_book(dav):
    path = dav.book_home + "Book %d/" % os.getpid()
    r = dav.must("mkcol", path, "Family", "-", carddav=True)
    assert r.final["status"] == 201
    found = [x for x in dav.must("discover", carddav=True).items if x["collection"] == path]
    assert found and found[0]["displayname"] == "Family"
    f = write_file(dav, "card.vcf", radicale_srv.make_vcard("mk-%s" % dav.name, "Zo\u00eb"))
    r = dav.must("put", path + "zoe.vcf", f, "--create", carddav=True)
    assert dav.client().get(path + "zoe.vcf")[0] == 200
    dav.must("delete", path)


def test_put_207_forms(fake):
    """A 207 answer to a write is read for its real status: a 412 inside is
    a refusal, a 2xx inside a success."""
    fake.route("PUT", "/c/a.ics", 207, multistatus(
        status_response("http%3A//x/c/a.ics", "HTTP/1.1 412 Precondition Failed")))
    fake.route("PUT", "/c/b.ics", 207, multistatus(
        status_response("/c/b.ics", "HTTP/1.1 201 Created")))
    fake.route("DELETE", "/c/d.ics", 207, multistatus(
        status_response("/c/d.ics", "HTTP/1.1 423 Locked")))
    fake.route("PUT", "/c/e.ics", 207, "")
    fake.route("PUT", "/c/w.ics", 201, "", {"ETag": 'W/"weak"'})
    fake.route("PUT", "/c/s.ics", 204, "", {"ETag": '"strong"'})
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".ics") as f:
        f.write(make_event("f"))
        f.flush()
        base = ["--url", fake.url, "--tls-none"]
        r = run_probe(base + ["put", "/c/a.ics", f.name, "--create"])
        assert r.rc == 1 and r.final["status"] == 412
        r = run_probe(base + ["put", "/c/b.ics", f.name, "--create"])
        assert r.rc == 0 and r.final["status"] == 201 and r.final["etag"] is None
        r = run_probe(base + ["delete", "/c/d.ics", "--if-match", '"1"'])
        assert r.rc == 1 and r.final["status"] == 423
        r = run_probe(base + ["put", "/c/e.ics", f.name, "--create"])
        assert r.rc == 1 and r.final["code"] == "protocol"
        r = run_probe(base + ["put", "/c/w.ics", f.name, "--create"])
        assert r.rc == 0 and r.final["etag"] is None
        r = run_probe(base + ["put", "/c/s.ics", f.name, "--if-match", '"old"'])
        assert r.rc == 0 and r.final["etag"] == '"strong"'
    puts = fake.seen("PUT")
    assert puts[0].headers.get("If-None-Match") == "*"
    assert puts[-1].headers.get("If-Match") == '"old"'
    assert "If-None-Match" not in puts[-1].headers
    assert all("Expect" not in p.headers for p in puts)
    assert fake.seen("DELETE")[0].headers.get("If-Match") == '"1"'


def test_move_sends_absolute_destination(fake):
    fake.route("MOVE", "/c/a%20b.ics", 201, "")
    fake.route("MOVE", "/c/x.ics", 501, "")
    r = run_probe(["--url", fake.url, "--tls-none", "move", "/c/a b.ics", "/d/new-name.ics"])
    assert r.rc == 0 and r.final["result"] == "ok", r
    m = fake.seen("MOVE")[0]
    assert m.headers["Destination"] == fake.url.rstrip("/") + "/d/new-name.ics"
    assert m.headers["Overwrite"] == "F"
    r = run_probe(["--url", fake.url, "--tls-none", "move", "/c/x.ics", "/d/y.ics"])
    assert r.rc == 0 and r.final["result"] == "fallback" and r.final["status"] == 501


def test_hostile_etag_is_not_a_header(fake):
    """An ETag with a line break (from a hostile answer) never becomes a
    second header."""
    r = run_probe(["--url", fake.url, "--tls-none", "delete", "/c/x.ics", "--if-match",
                   '"a"\r\nX-Evil: 1'])
    assert r.rc == 1 and r.final["code"] == "protocol"
    assert fake.seen("DELETE") == []
