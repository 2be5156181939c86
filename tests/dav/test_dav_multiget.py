"""calendar-multiget / addressbook-multiget (sync/dav.h dav_multiget)
through dav_probe against Radicale and Xandikos: 2,000 events in batches,
each byte for byte as the server has it; per-href 404s; hrefs with spaces
and non-ASCII letters in any encoding; and against a scripted server, an
answer that leaves an href out and one that is too big."""

import random
import urllib.parse

from davlib import radicale_srv, run_probe
from fakedav import multistatus, propstat, status_response

make_event = radicale_srv.make_event

N = 2000
BATCH = 250


def load_events(dav, cal, n, tag):
    items = {"ev%04d.ics" % i: make_event("%s-%s-%04d" % (tag, dav.name, i), "Event %d \u00e9" % i,
                                          "2026%02d%02dT%02d0000Z" % (i % 12 + 1, i % 28 + 1,
                                                                      i % 24))
             for i in range(n)}
    dav.server.bulk_put(cal, items)
    return items


def check_items(dav, cal, items, got):
    """Every item once, byte for byte as the server holds it, with the
    server's ETag. What the server holds is what it was given (bulk_put):
    checked on a sample with GET, the independent view."""
    c = dav.client()
    etags = c.etags(cal)
    assert len(etags) == len(items)
    for name in random.Random(4).sample(sorted(items), 10):
        st, etag, body = c.get(cal + name)
        assert st == 200 and body == items[name] and etag == etags[cal + name]
    seen = set()
    for x in got:
        href = x["href"]
        assert href not in seen
        seen.add(href)
        assert x["status"] == 200
        assert x["data"].encode() == items[href[len(cal):]], href
        assert x["etag"] == etags[href]
    assert len(seen) == len(items)


def test_2000_events(dav):
    """2,000 events: multiget in batches and the one-REPORT fetch-all.
    Xandikos' multiget costs grow with the collection (about 14 ms per href
    in a collection of 2,000: 28 s in all), so there the multiget part
    spreads the 2,000 events over eight collections of 250."""
    big = dav.new_calendar("Big")
    made = [big]
    try:
        run_2000(dav, big, made)
    finally:
        # the session's server stays small for the tests that follow
        for cal in made:
            dav.client().delete(cal)


def run_2000(dav, big, made):
    items = load_events(dav, big, N, "big")
    r = dav.must("fetch-all", big, timeout=300)
    assert r.final["count"] == N
    check_items(dav, big, items, r.items)

    if dav.name == "radicale":
        parts = [(big, items)]
    else:
        parts = []
        for k in range(8):
            cal = dav.new_calendar("Part %d" % k)
            made.append(cal)
            parts.append((cal, load_events(dav, cal, N // 8, "part%d" % k)))
    total = requests = 0
    for cal, its in parts:
        hrefs = "\n".join(cal + n for n in sorted(its)) + "\n"
        r = dav.must("multiget", cal, "-", "--batch", str(BATCH), input=hrefs, timeout=300)
        assert r.final["count"] == len(its)
        check_items(dav, cal, its, r.items)
        total += r.final["count"]
        requests += r.final["requests"]
    assert total == N and requests == N // BATCH


def test_multiget_404_and_odd_hrefs(dav):
    cal = dav.new_calendar()
    c = dav.client()
    names = ["plain.ics", "with space.ics", "\u00e9t\u00e9 \u65e5\u672c.ics", "a+b&c.ics"]
    for i, n in enumerate(names):
        st, _ = c.put(cal + n, make_event("odd-%s-%d" % (dav.name, i)), if_none_match="*")
        assert st == 201, n
    spaced = cal + urllib.parse.quote(names[1])                # "%20"
    encoded = cal + urllib.parse.quote(names[2]).lower()     # "%c3%a9..."
    asked = [cal + names[0], spaced, encoded, cal + names[3], cal + "missing.ics",
             cal + names[0]]
    r = dav.must("multiget", cal, *asked)
    assert r.final["count"] == len(asked)
    got = {}
    for x in r.items:
        got.setdefault(x["href"], []).append(x)
    # the callback names each href as the caller gave it
    assert set(got) == set(asked)
    for href in (cal + names[0], spaced, encoded, cal + names[3]):
        x = got[href][0]
        assert x["status"] == 200 and x["data"].startswith("BEGIN:VCALENDAR\r\n")
        assert x["etag"]
    st, _, body = c.get(cal + names[2])
    assert got[encoded][0]["data"].encode() == body
    assert got[cal + "missing.ics"][0]["status"] == 404
    assert got[cal + "missing.ics"][0]["data"] is None
    # the same href asked twice is answered twice
    assert len(got[cal + names[0]]) == 2


def test_multiget_address_book(dav):
    book = dav.new_book()
    c = dav.client()
    cards = {"c%d.vcf" % i: radicale_srv.make_vcard("card-%s-%d" % (dav.name, i),
                                                    "Person %d \u00fc" % i) for i in range(5)}
    for n, data in cards.items():
        st, _ = c.put(book + n, data, ctype="text/vcard; charset=utf-8")
        assert st == 201
    r = dav.must("multiget", book, *[book + n for n in cards], carddav=True)
    assert r.final["count"] == 5
    for x in r.items:
        st, etag, body = c.get(x["href"])
        assert x["status"] == 200 and x["data"].encode() == body and x["etag"] == etag


def test_multiget_answer_missing_href(fake):
    fake.route("REPORT", "/c/", 207, multistatus(
        propstat("/c/a.ics", '<D:getetag>"a"</D:getetag><C:calendar-data>BEGIN:VCALENDAR\n'
                 'END:VCALENDAR\n</C:calendar-data>'),
        status_response("/c/b.ics", "HTTP/1.1 404 Not Found"),
        propstat("/c/unasked.ics", '<D:getetag>"u"</D:getetag>'),
        propstat("/c/d.ics", "<C:calendar-data/>", "HTTP/1.1 404 Not Found")))
    r = run_probe(["--url", fake.url, "--tls-none", "multiget", "/c/", "/c/a.ics", "/c/b.ics",
                   "/c/forgotten.ics", "/c/d.ics"])
    assert r.rc == 0, r
    got = {x["href"]: x for x in r.items}
    assert got["/c/a.ics"]["data"] == "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    assert got["/c/a.ics"]["etag"] == '"a"'
    assert got["/c/b.ics"]["status"] == 404
    assert got["/c/d.ics"]["status"] == 404
    assert got["/c/forgotten.ics"]["status"] == 0
    assert "/c/unasked.ics" not in got
    body = fake.seen("REPORT", "/c/")[0].body.decode()
    assert "calendar-multiget" in body and body.count("<D:href>") == 4


def test_multiget_answer_too_big(fake):
    """An answer over the 64 MiB cap is an error, not a crash or 70 MB held."""
    chunk = b"x" * (1 << 20)

    def big(req):
        def gen():
            return 70 * len(chunk), (chunk for _ in range(70))
        return 207, {"Content-Type": "application/xml"}, gen

    fake.route("REPORT", "/c/", handler=big)
    r = run_probe(["--url", fake.url, "--tls-none", "multiget", "/c/", "/c/a.ics"])
    assert r.rc == 1 and r.final["code"] == "protocol"
    assert "larger than 64 MiB" in r.final["message"]
