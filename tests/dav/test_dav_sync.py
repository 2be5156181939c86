"""Changes since a sync token (sync/dav.h dav_sync, RFC 6578) and the
PROPFIND listing (dav_list) through dav_probe against Radicale and
Xandikos: the initial sync lists what the server holds; creations, edits
and deletions made with an independent client show up as changes since the
token; a token the server rejects (Radicale 403, Xandikos 500) comes back
as the distinct result; and, against a scripted server, truncated answers
(507) and servers without sync-collection."""

from davlib import radicale_srv, run_probe
from fakedav import multistatus, propstat, status_response

make_event = radicale_srv.make_event


def changes(res):
    changed = {x["changed"]: x["etag"] for x in res.items if "changed" in x}
    removed = {x["removed"] for x in res.items if "removed" in x}
    return changed, removed


def test_initial_then_changes(dav):
    cal = dav.new_calendar()
    c = dav.client()
    names = ["a.ics", "b c.ics", "\u00e9t\u00e9 \u20ac.ics", "d.ics"]
    for i, n in enumerate(names):
        st, _ = c.put(cal + n, make_event("sync-%s-%d" % (dav.name, i)), if_none_match="*")
        assert st == 201
    r = dav.must("sync", cal)
    assert r.final["result"] == "ok"
    token = r.final["token"]
    assert token
    changed, removed = changes(r)
    assert changed == c.etags(cal)
    assert set(changed) == {cal + n for n in names}
    assert removed == set()

    # nothing happened: nothing reported
    r = dav.must("sync", cal, token)
    assert r.final["result"] == "ok" and r.items == []

    # an independent client creates, edits and deletes
    before = c.etags(cal)
    st, _ = c.put(cal + "new \u00e9.ics", make_event("sync-%s-new" % dav.name),
                  if_none_match="*")
    assert st == 201
    st, _ = c.put(cal + "a.ics", make_event("sync-%s-0" % dav.name, "Edited"),
                  if_match=before[cal + "a.ics"])
    assert st in (200, 201, 204)
    assert c.delete(cal + "d.ics") in (200, 204)
    r = dav.must("sync", cal, token)
    changed, removed = changes(r)
    after = c.etags(cal)
    assert changed == {cal + "new \u00e9.ics": after[cal + "new \u00e9.ics"],
                       cal + "a.ics": after[cal + "a.ics"]}
    assert removed == {cal + "d.ics"}
    assert r.final["token"] and r.final["token"] != token
    # the new token is current
    r2 = dav.must("sync", cal, r.final["token"])
    assert r2.items == []


def test_rejected_tokens(dav):
    cal = dav.new_calendar()
    other = dav.new_calendar()
    dav.client().put(other + "x.ics", make_event("tok-%s" % dav.name))
    other_token = dav.must("sync", other).final["token"]
    bogus = ["garbage", "http://radicale.org/ns/sync/" + "0" * 64, "0" * 40, other_token]
    for tok in bogus:
        r = dav.must("sync", cal, tok)
        assert r.final["result"] == "token-rejected", (tok, r)
        assert r.items == [] and r.final["token"] is None
        assert "full resync" in r.final["message"]
    # a token with characters XML cannot carry is rejected without asking
    r = dav.must("sync", cal, "bad\x01token")
    assert r.final["result"] == "token-rejected"
    # the full resync that follows works
    assert dav.must("sync", cal).final["result"] == "ok"


def test_list_matches_server(dav):
    cal = dav.new_calendar()
    c = dav.client()
    for n in ("x.ics", "y z.ics", "\u00fc.ics"):
        c.put(cal + n, make_event("list-%s-%s" % (dav.name, n)))
    r = dav.must("list", cal)
    changed, removed = changes(r)
    assert changed == c.etags(cal) and len(changed) == 3 and removed == set()
    # the collection itself and sub-collections are not members
    assert cal not in changed


def test_sync_address_book(dav):
    book = dav.new_book()
    c = dav.client()
    st, _ = c.put(book + "alice.vcf", radicale_srv.make_vcard("v-%s-1" % dav.name),
                  ctype="text/vcard")
    assert st == 201
    r = dav.must("sync", book, carddav=True)
    changed, _ = changes(r)
    assert changed == c.etags(book)


def test_sync_missing_collection(dav):
    r = dav.probe("sync", dav.cal_home + "no-such-calendar/")
    assert r.rc == 1 or r.final.get("result") in ("unsupported",)
    if r.rc == 1:
        assert r.final["code"] == "server" and r.final["scope"] == "folder"


def test_truncated_answer_is_continued(fake):
    """RFC 6578 section 3.6: a 507 on the collection means more to come."""
    calls = []

    def report(req):
        calls.append(req.body)
        if b"<D:sync-token>t1</D:sync-token>" in req.body:
            body = multistatus(propstat("/c/b.ics", '<D:getetag>"b1"</D:getetag>'),
                               status_response("/c/gone.ics", "HTTP/1.1 404 Not Found"),
                               token="t2")
        else:
            body = multistatus(propstat("/c/a.ics", '<D:getetag>"a1"</D:getetag>'),
                               status_response("/c/", "HTTP/1.1 507 Insufficient Storage"),
                               token="t1")
        return 207, {"Content-Type": "application/xml"}, body.encode()

    fake.route("REPORT", "/c/", handler=report)
    r = run_probe(["--url", fake.url, "--tls-none", "sync", "/c/"])
    assert r.rc == 0, r
    changed, removed = changes(r)
    assert changed == {"/c/a.ics": '"a1"', "/c/b.ics": '"b1"'}
    assert removed == {"/c/gone.ics"}
    assert r.final["token"] == "t2"
    assert len(calls) == 2
    assert all(fake.seen("REPORT")[i].headers.get("Depth") == "0" for i in range(2))


def test_sync_unsupported(fake):
    fake.route("REPORT", "/c/", 403, '<?xml version="1.0"?><D:error xmlns:D="DAV:">'
               '<D:supported-report/></D:error>')
    r = run_probe(["--url", fake.url, "--tls-none", "sync", "/c/"])
    assert r.rc == 0 and r.final["result"] == "unsupported"
    fake.route("REPORT", "/d/", 501, "")
    r = run_probe(["--url", fake.url, "--tls-none", "sync", "/d/", "sometoken"])
    assert r.rc == 0 and r.final["result"] == "unsupported"
    # the fallback: PROPFIND Depth 1
    fake.route("PROPFIND", "/c/", 207, multistatus(
        propstat("/c/", "<D:resourcetype><D:collection/></D:resourcetype>"),
        propstat("/c/x.ics", '<D:getetag>"x"</D:getetag><D:resourcetype/>'),
        propstat("/c/sub/", "<D:resourcetype><D:collection/></D:resourcetype>"),
        propstat("/c/noetag.ics", "<D:resourcetype/>")))
    r = run_probe(["--url", fake.url, "--tls-none", "list", "/c/"])
    assert r.rc == 0
    changed, _ = changes(r)
    assert changed == {"/c/x.ics": '"x"', "/c/noetag.ics": ""}
    assert fake.seen("PROPFIND", "/c/")[0].headers.get("Depth") == "1"


def test_sync_server_errors(fake):
    fake.route("REPORT", "/c/", 503, "busy", {"Content-Type": "text/plain"})
    r = run_probe(["--url", fake.url, "--tls-none", "sync", "/c/"])
    assert r.rc == 1 and r.final["code"] == "server" and r.final["retry"] == "later"
    assert "503" in r.final["message"] and "busy" in r.final["message"]
    fake.route("REPORT", "/e/", 207, "<D:multistatus xmlns:D='DAV:'><D:response>")
    r = run_probe(["--url", fake.url, "--tls-none", "sync", "/e/"])
    assert r.rc == 1 and r.final["code"] == "protocol"
