"""Discovery (sync/dav.h dav_discover) through dav_probe against Radicale and
Xandikos: from the server's root (RFC 6764 well-known, principal, home
sets), from the principal, from one collection URL; calendars and address
books kept apart; names, component sets and sync tokens as the server
says, checked with an independent client (getctag is not asked for: the
token alone tells a change); and against a scripted server, the default
calendar, redirects and hrefs in odd forms."""

import urllib.parse

from fakedav import multistatus, propstat

NS = "urn:ietf:params:xml:ns:caldav"


def by_href(res):
    return {x["collection"]: x for x in res.items}


def server_props(dav, path):
    st, rs = dav.client().propfind(path, 0, ["D:displayname", "CS:getctag", "D:sync-token"])
    assert st == 207
    props = rs[0][1]
    get = lambda k: props[k].text if k in props else None  # noqa: E731
    return (get("{DAV:}displayname"), get("{http://calendarserver.org/ns/}getctag"),
            get("{DAV:}sync-token"))


def test_discover_from_root(dav):
    cal = dav.new_calendar("Trips \u00e9t\u00e9", ("VEVENT", "VTODO"))
    book = dav.new_book("Friends")
    r = dav.must("discover")
    assert r.final["principal"] == dav.principal
    cols = by_href(r)
    assert cal in cols and book not in cols
    c = cols[cal]
    name, ctag, token = server_props(dav, cal)
    assert c["displayname"] == "Trips \u00e9t\u00e9" == name
    # getctag is not asked for (servers compute it from every item, as
    # the token), so discovery reports none
    assert ctag and c["ctag"] is None and c["sync_token"] == token
    if dav.name == "radicale":
        assert c["comps"] == ["VEVENT", "VTODO"]
    else:
        # Xandikos ignores the component set asked for at MKCALENDAR
        assert set(c["comps"]) >= {"VEVENT", "VTODO"}
    # neither server names a default calendar
    assert not any(x["default"] for x in r.items)
    for href in cols:
        assert href.startswith(dav.cal_home) and href.endswith("/")


def test_discover_address_books(dav):
    cal = dav.new_calendar("Not a book")
    book = dav.new_book("Family \u00e9")
    r = dav.must("discover", carddav=True)
    cols = by_href(r)
    assert book in cols and cal not in cols
    assert cols[book]["displayname"] == "Family \u00e9"
    assert cols[book]["comps"] == []
    if dav.name == "xandikos":
        assert "/user/contacts/addressbook/" in cols


def test_discover_from_principal(dav):
    cal = dav.new_calendar("P")
    r = dav.must("discover", url=dav.url.rstrip("/") + dav.principal)
    assert cal in by_href(r)
    assert r.final["principal"] == dav.principal


def test_discover_from_collection_url(dav):
    cal = dav.new_calendar("Only me", name="only me \u00e9")
    dav.new_calendar("Not me")
    url = dav.url.rstrip("/") + urllib.parse.quote(cal)
    r = dav.must("discover", url=url)
    assert r.final["count"] == 1 and r.final["principal"] is None
    assert r.items[0]["collection"] == cal
    assert r.items[0]["displayname"] == "Only me"
    # a calendar URL is no address book: discovery goes on from its principal
    r = dav.must("discover", url=url, carddav=True)
    assert cal not in by_href(r)


def test_discover_missing_collection_url(dav):
    r = dav.probe("discover", url=dav.url + "no/such/collection/")
    assert r.rc == 1 and r.final["code"] in ("server", "protocol")


def _principal_answer(default=None, inbox=None):
    extra = ""
    if default:
        extra += "<C:schedule-default-calendar-URL><D:href>%s</D:href>" \
                 "</C:schedule-default-calendar-URL>" % default
    if inbox:
        extra += "<C:schedule-inbox-URL><D:href>%s</D:href></C:schedule-inbox-URL>" % inbox
    return multistatus(propstat("/p/", "<D:current-user-principal><D:href>/p/</D:href>"
                                "</D:current-user-principal><C:calendar-home-set>"
                                "<D:href>/h/</D:href></C:calendar-home-set>" + extra))


HOME = multistatus(
    propstat("/h/", "<D:resourcetype><D:collection/></D:resourcetype>"),
    propstat("http://127.0.0.1:1/h/work/", "<D:resourcetype><D:collection/><C:calendar/>"
             "</D:resourcetype><D:displayname>Work</D:displayname>"),
    propstat("/h/Private%20%C3%A9/", "<D:resourcetype><D:collection/><C:calendar/>"
             "</D:resourcetype><C:supported-calendar-component-set><C:comp name=\"VTODO\"/>"
             "</C:supported-calendar-component-set>"),
    propstat("inbox/", "<D:resourcetype><D:collection/><C:schedule-inbox/></D:resourcetype>"),
    propstat("/h/book/", "<D:resourcetype><D:collection/><A:addressbook/></D:resourcetype>"))


def test_discover_default_and_redirect(fake):
    """Well-known redirects (relative Location) to the principal; the
    principal names the default; a home answer with an absolute URL, an
    encoded name and a relative href; the inbox and the book left out."""
    fake.route("PROPFIND", "/.well-known/caldav", 301, b"", {"Location": "/p/"})
    fake.route("PROPFIND", "/p/", 207, _principal_answer(default="/h/Private%20%C3%A9"))
    fake.route("PROPFIND", "/h/", 207, HOME)
    from davlib import run_probe
    r = run_probe(["--url", fake.url, "--tls-none", "discover"])
    assert r.rc == 0, r
    cols = by_href(r)
    assert list(cols) == ["/h/work/", "/h/Private \u00e9/"]
    assert cols["/h/work/"]["displayname"] == "Work"
    assert cols["/h/work/"]["comps"] == ["VEVENT", "VTODO", "VJOURNAL"]
    assert cols["/h/Private \u00e9/"]["comps"] == ["VTODO"]
    assert cols["/h/Private \u00e9/"]["default"] is True
    assert cols["/h/work/"]["default"] is False
    pf = fake.seen("PROPFIND", "/h/")
    assert pf and pf[0].headers.get("Depth") == "1"
    assert fake.seen("PROPFIND", "/p/")[0].headers.get("Depth") == "0"


def test_discover_default_from_inbox(fake):
    """RFC 6638 puts schedule-default-calendar-URL on the inbox."""
    fake.route("PROPFIND", "/.well-known/caldav", 404)
    fake.route("PROPFIND", "/", 207, _principal_answer(inbox="/h/inbox/"))
    fake.route("PROPFIND", "/p/", 207, _principal_answer(inbox="/h/inbox/"))
    fake.route("PROPFIND", "/h/inbox/", 207, multistatus(propstat(
        "/h/inbox/", "<C:schedule-default-calendar-URL><D:href>/h/work/</D:href>"
        "</C:schedule-default-calendar-URL>")))
    fake.route("PROPFIND", "/h/", 207, HOME)
    from davlib import run_probe
    r = run_probe(["--url", fake.url, "--tls-none", "discover"])
    assert r.rc == 0, r
    assert by_href(r)["/h/work/"]["default"] is True


def test_discover_refuses_redirect_to_other_server(fake):
    fake.route("PROPFIND", "/.well-known/caldav", 302, b"",
               {"Location": "http://127.0.0.2:%d/p/" % fake.port})
    fake.route("PROPFIND", "/", 207, multistatus(propstat("/", "<D:resourcetype/>")))
    from davlib import run_probe
    r = run_probe(["--url", fake.url, "--tls-none", "--user", "alice", "--password-file",
                   "/dev/null", "discover"])
    assert r.rc == 1
    assert "another server" in r.final["message"]
    assert not [q for q in fake.requests if q.path == "/p/"]


def test_discover_nothing_found(fake):
    fake.route("PROPFIND", "/.well-known/caldav", 404)
    fake.route("PROPFIND", "/", 207, multistatus(propstat("/", "<D:resourcetype/>")))
    from davlib import run_probe
    r = run_probe(["--url", fake.url, "--tls-none", "discover"])
    assert r.rc == 1 and r.final["code"] == "server"
    assert "set caldav to a collection URL" in r.final["message"]


def test_discover_not_dav(fake):
    fake.route("PROPFIND", "/dav/", 200, b"<html>hello</html>", {"Content-Type": "text/html"})
    from davlib import run_probe
    r = run_probe(["--url", fake.url + "dav/", "--tls-none", "discover"])
    assert r.rc == 1 and "HTTP 200" in r.final["message"]
