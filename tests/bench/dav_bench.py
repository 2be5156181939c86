#!/usr/bin/python3
"""mailfs CalDAV/CardDAV benchmark (DESIGN section 8): `mailfs sync` side by
side with vdirsyncer, on the same server, in one run, on one generated corpus.

    /usr/bin/python3 tests/bench/dav_bench.py [--events 2000] [--contacts 2000]
        [--server radicale|xandikos|both] [--runs 3] [--mailfs BIN]
        [--out tests/bench/dav_results.md] [--json FILE] [--keep]

Run as root on Debian 12 (it apt-get installs vdirsyncer, radicale, xandikos
and GNU time when missing). For each server it starts the server on a free
loopback port in a temporary directory (tests/servers/radicale.py,
xandikos.py), loads the corpus straight into its storage, checks it over HTTP
with an independent client and warms the server's caches, then measures
--runs times, interleaved (vdirsyncer run 1, mailfs run 1, vdirsyncer run 2,
...), each on a fresh destination:

  vdirsyncer  `vdirsyncer discover` (not timed; its prompts answered "y"),
              then `vdirsyncer sync` (initial), then `vdirsyncer sync` again
              (no change), into filesystem storage (one .ics/.vcf per item)
  mailfs      `mailfs --config CFG sync bench` on a fresh XDG_DATA_HOME
              (initial), then the same again (no change)

Both must end with every item of every collection (files counted for
vdirsyncer, store rows and content files for mailfs), so that neither is
measured doing less. The requests each made are counted in the server's
log (Radicale at log level info also gives the time it spent answering).
Ratios vdirsyncer / mailfs are set beside the DESIGN section 8 targets:
initial sync at least 5x faster, no-change sync at least 20x faster.

Method, as in tests/bench/bench.py (see tests/bench/README.md): server caches
warm for both (the corpus is listed, queried and sync-collected once before
anything is timed); client side fresh every run, on a journaled ext4 (a loop
image when the temporary directory is on ext4 without a journal: bench.DestFs),
with sync(2) before each measurement; peak RSS and CPU from GNU time; the CPU
other processes use during the run is reported. Radicale runs with fsync off
(tests/servers/radicale.py) and at log level info (a line per request);
Xandikos 0.2.8 has no authentication. The report also gives what each server
takes for the requests the clients rely on (measured with an independent
client), since a client's time is bounded by them. The mailfs binary is
copied at start, so that a rebuild in the shared tree during the run changes
nothing. About 5 minutes for both servers at the defaults (vdirsyncer on
Xandikos takes about 50 s per run: Xandikos answers a calendar-multiget in
time proportional to hrefs x collection size).
"""

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "servers"))

import bench  # noqa: E402  (tests/bench/bench.py: process, load and disk helpers)

APT_LINE = ["apt-get", "install", "-y", "--no-install-recommends",
            "vdirsyncer", "radicale", "xandikos", "time", "e2fsprogs"]
NEEDED_BINARIES = {"/usr/bin/vdirsyncer": "vdirsyncer",
                   "/usr/lib/python3/dist-packages/radicale/__init__.py": "radicale",
                   "/usr/lib/python3/dist-packages/xandikos/__init__.py": "xandikos",
                   "/usr/bin/time": "time", "/usr/sbin/mkfs.ext4": "e2fsprogs"}
VDIRSYNCER = "/usr/bin/vdirsyncer"
USER, PASSWORD = "bench", "bench-secret"
ACCOUNT = "bench"
SEED = 20250101


def setup(log):
    """Install what is compared against when missing (a fresh Debian 12, as root)."""
    missing = sorted({pkg for path, pkg in NEEDED_BINARIES.items() if not os.path.exists(path)})
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"dav_bench: missing {' '.join(missing)}; run as root or: "
                 f"{' '.join(APT_LINE)}")
    log(f"setup: installing {' '.join(missing)}: {' '.join(APT_LINE)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(APT_LINE, check=True, env=env)


# --- the DAV corpus ------------------------------------------------------------------
#
# Item i of a kind depends only on (seed, kind, i). Events: ~1 KB on average;
# 65% timed in Europe/Berlin (with its VTIMEZONE, as most clients write
# them), 15% all-day (some over several days), 12% weekly or monthly
# recurring with one overridden occurrence (a second VEVENT with
# RECURRENCE-ID in the same resource) and sometimes an EXDATE, 8% in UTC;
# organizers, attendees, alarms, folded long descriptions, non-ASCII text.
# Contacts: vCard 3.0 with FN/N/EMAIL/TEL and often ORG/TITLE/ADR/BDAY/NOTE,
# about a third with non-ASCII names. Tasks (optional): VTODO with DUE,
# PRIORITY, some COMPLETED.

FIRST = [("Anna", "Schmidt"), ("Lukas", "Müller"), ("Sophie", "Martin"),
         ("Élodie", "Dubois"), ("Javier", "García"), ("Lucía", "Fernández"),
         ("Michał", "Wiśniewski"), ("Zofia", "Kowalczyk"), ("Giorgos", "Papadopoulos"),
         ("Ελένη", "Παπαδοπούλου"), ("Дмитрий", "Иванов"), ("Ольга", "Смирнова"),
         ("Haruto", "Sato"), ("佐藤", "花子"), ("李", "伟"), ("John", "Smith"),
         ("Emily", "Johnson"), ("Michael", "Brown"), ("Sarah", "Davis"),
         ("David", "Wilson"), ("Laura", "Taylor"), ("James", "Anderson"),
         ("Olivia", "Thomas"), ("Daniel", "Moore"), ("Grace", "Jackson"),
         ("Björn", "Lindqvist"), ("Søren", "Jørgensen"), ("Chloé", "Lefèvre"),
         ("Mateo", "Rossi"), ("Giulia", "Bianchi"), ("Ayşe", "Yılmaz"),
         ("Nguyễn", "Văn An")]
ASCII_FIRST = [f for f in FIRST if all(ord(c) < 128 for c in f[0] + f[1])]
ORGS = ["Example Corp", "Acme GmbH", "Initech", "Globex Ltd", "Umbrella SA",
        "Société Générale de Test", "Müller & Söhne KG", "Stark Industries",
        "University of Examples", "Städtische Werke", "株式会社テスト"]
TITLES = ["Engineer", "Project Manager", "Sales", "CTO", "Designer", "Accountant",
          "Researcher", "Support", "Head of Operations"]
CITIES = [("Berlin", "10115", "Germany"), ("Paris", "75002", "France"),
          ("Kraków", "30-001", "Poland"), ("Madrid", "28013", "Spain"),
          ("London", "EC1A 1BB", "United Kingdom"), ("München", "80331", "Germany"),
          ("Αθήνα", "105 57", "Greece"), ("Tokyo", "100-0001", "Japan")]
STREETS = ["Hauptstraße 12", "Rue de Rivoli 45", "ul. Floriańska 3", "Calle Mayor 7",
           "221B Baker Street", "Marienplatz 1", "Οδός Ερμού 20", "1-1 Chiyoda"]
SUMMARIES = ["Team sync", "Weekly planning", "1:1 with {who}", "Project review",
             "Lunch with {who}", "Dentist", "Flight to {city}", "Release retrospective",
             "Customer call: {org}", "Budget meeting", "Interview", "Board meeting",
             "Yoga", "Parents' evening", "Car service", "Sprint demo",
             "Besprechung Übergabe", "Réunion d'équipe", "Revisión trimestral",
             "Spotkanie z {who}", "Συνάντηση έργου", "定例会議", "Code review: parser",
             "Architecture workshop", "Birthday party 🎉", "Conference: {city}"]
ALLDAY = ["Holiday", "Conference", "Public holiday", "Offsite", "Vacation",
          "Birthday: {who}", "Urlaub", "Congés", "Trade fair in {city}"]
LOCATIONS = ["Room 4.12", "Main office, 3rd floor", "Café Central", "Zoom",
             "https://meet.example.org/abc-defg-hij", "Konferenzraum Süd",
             "Salle Voltaire", "Home", "{city}"]
DESCRIPTION = [
    "Agenda: status of the open items, risks, decisions needed this week.",
    "Please read the attached notes before the meeting; we will go through the "
    "open questions one by one and agree on owners and dates.",
    "Dial-in: +49 30 1234567, PIN 4711#. The recording will be shared afterwards.",
    "Bring the signed contract and the updated figures for Q3, including the "
    "revised forecast and the hiring plan.",
    "Tagesordnung: Rückblick, Planung, Verschiedenes. Bitte Unterlagen mitbringen.",
    "Ordre du jour : point d'avancement, budget, questions diverses.",
    "Notes from last time: the migration is done; the old endpoint stays until "
    "the end of the month. Follow-ups are in the tracker.",
]
TASKS = ["Renew passport", "Send invoice to {org}", "Review pull request",
         "Book flights to {city}", "Prepare slides", "Call {who}", "Steuererklärung",
         "Pay rent", "Update the wiki", "Order office chairs"]

VTIMEZONE_BERLIN = [
    "BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST",
    "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
    "BEGIN:STANDARD", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "TZNAME:CET",
    "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
    "END:VTIMEZONE",
]


def _rng(seed, kind, i):
    return random.Random(f"{seed}:{kind}:{i}")


def _uuid(rng):
    b = bytearray(rng.randbytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(s):
    """An iCalendar/vCard TEXT value, escaped."""
    return (s.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def _fold(line):
    """RFC 5545 3.1 / RFC 6350 3.2: lines of at most 75 octets, continuation
    lines starting with a space, never splitting a UTF-8 sequence."""
    data = line.encode()
    if len(data) <= 75:
        return [line]
    out, cur, limit = [], b"", 75
    for ch in line:
        c = ch.encode()
        if len(cur) + len(c) > limit:
            out.append(cur.decode())
            cur, limit = b"", 74
        cur += c
    out.append(cur.decode())
    return [out[0]] + [" " + x for x in out[1:]]


def _join(lines):
    folded = []
    for line in lines:
        folded += _fold(line)
    return ("\r\n".join(folded) + "\r\n").encode()


def _fill(rng, template):
    first, last = rng.choice(FIRST)
    return template.format(who=f"{first} {last}", city=rng.choice(CITIES)[0],
                           org=rng.choice(ORGS))


def _stamp(rng):
    d = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        seconds=rng.randrange(360 * 86400))
    return d.strftime("%Y%m%dT%H%M%SZ")


def _person(rng):
    first, last = rng.choice(FIRST if rng.random() < 0.35 else ASCII_FIRST)
    mail = (re.sub(r"[^a-z]", "", first.lower()) or "user") + "." + (
        re.sub(r"[^a-z]", "", last.lower()) or "x")
    return f"{first} {last}", f"{mail}@example.org"


def make_event(i, seed=SEED):
    """(uid, iCalendar bytes) of event i."""
    rng = _rng(seed, "event", i)
    uid = _uuid(rng)
    x = rng.random()
    kind = "timed" if x < 0.65 else "allday" if x < 0.80 else "recurring" if x < 0.92 else "utc"
    base = datetime.datetime(2025, 6, 1) + datetime.timedelta(days=rng.randrange(400))
    start = base.replace(hour=rng.choice([8, 9, 10, 11, 13, 14, 15, 16, 17]),
                         minute=rng.choice([0, 0, 15, 30, 45]))
    end = start + datetime.timedelta(minutes=rng.choice([15, 30, 45, 60, 60, 90, 120]))
    fmt = "%Y%m%dT%H%M%S"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0",
             rng.choice(["PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
                         "PRODID:-//Apple Inc.//macOS 14.2//EN",
                         "PRODID:-//Nextcloud calendar v4.6.0",
                         "PRODID:-//mailfs bench//EN"]),
             "CALSCALE:GREGORIAN"]
    if kind in ("timed", "recurring"):
        lines += VTIMEZONE_BERLIN
    created = _stamp(rng)
    ev = ["BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:" + created, "CREATED:" + created,
          "LAST-MODIFIED:" + created, f"SEQUENCE:{rng.choice([0, 0, 0, 1, 2])}"]
    if kind == "allday":
        days = rng.choice([1, 1, 1, 2, 3, 5])
        summary = _fill(rng, rng.choice(ALLDAY))
        ev += ["DTSTART;VALUE=DATE:" + base.strftime("%Y%m%d"),
               "DTEND;VALUE=DATE:" + (base + datetime.timedelta(days=days)).strftime("%Y%m%d"),
               "TRANSP:TRANSPARENT"]
    elif kind == "utc":
        summary = _fill(rng, rng.choice(SUMMARIES))
        ev += ["DTSTART:" + start.strftime(fmt) + "Z", "DTEND:" + end.strftime(fmt) + "Z"]
    else:
        summary = _fill(rng, rng.choice(SUMMARIES))
        ev += ["DTSTART;TZID=Europe/Berlin:" + start.strftime(fmt),
               "DTEND;TZID=Europe/Berlin:" + end.strftime(fmt)]
    ev.append("SUMMARY:" + _text(summary))
    if kind != "allday" or rng.random() < 0.3:
        ev.append("LOCATION:" + _text(_fill(rng, rng.choice(LOCATIONS))))
    if rng.random() < 0.6:
        ev.append("DESCRIPTION:" + _text(" ".join(rng.sample(DESCRIPTION, rng.randint(1, 2)))))
    if kind != "allday" and rng.random() < 0.5:
        org_name, org_mail = _person(rng)
        ev.append(f'ORGANIZER;CN="{org_name}":mailto:{org_mail}')
        for _ in range(rng.randint(1, 4)):
            name, mail = _person(rng)
            ev.append(f'ATTENDEE;CN="{name}";ROLE=REQ-PARTICIPANT;PARTSTAT='
                      f'{rng.choice(["ACCEPTED", "NEEDS-ACTION", "TENTATIVE"])};'
                      f'RSVP=TRUE:mailto:{mail}')
    if rng.random() < 0.3:
        ev.append("CATEGORIES:" + rng.choice(["Work", "Personal", "Travel", "Family"]))
    ev.append("STATUS:" + rng.choice(["CONFIRMED", "CONFIRMED", "TENTATIVE"]))
    override = []
    if kind == "recurring":
        weekly = rng.random() < 0.7
        count = rng.choice([8, 10, 12, 26, 52])
        ev.append("RRULE:FREQ=WEEKLY;COUNT=%d" % count if weekly
                  else "RRULE:FREQ=MONTHLY;BYMONTHDAY=%d;COUNT=%d" % (start.day, count))
        step = datetime.timedelta(days=7) if weekly else None
        if weekly and rng.random() < 0.5:
            ev.append("EXDATE;TZID=Europe/Berlin:" + (start + 2 * step).strftime(fmt))
        # One occurrence moved by an hour and renamed: a second VEVENT.
        occ = start + step if weekly else start.replace(month=start.month % 12 + 1,
                                                         year=start.year + (start.month == 12))
        moved = occ + datetime.timedelta(hours=1)
        override = ["BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:" + created,
                    "RECURRENCE-ID;TZID=Europe/Berlin:" + occ.strftime(fmt),
                    "DTSTART;TZID=Europe/Berlin:" + moved.strftime(fmt),
                    "DTEND;TZID=Europe/Berlin:" + (moved + (end - start)).strftime(fmt),
                    "SUMMARY:" + _text(summary + " (moved)"), "SEQUENCE:1", "END:VEVENT"]
    if rng.random() < 0.5:
        ev += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder",
               "TRIGGER:-PT%dM" % rng.choice([5, 10, 15, 30]), "END:VALARM"]
    ev.append("END:VEVENT")
    lines += ev + override + ["END:VCALENDAR"]
    return uid, _join(lines)


def make_task(i, seed=SEED):
    rng = _rng(seed, "task", i)
    uid = _uuid(rng)
    created = _stamp(rng)
    due = datetime.date(2025, 6, 1) + datetime.timedelta(days=rng.randrange(300))
    t = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mailfs bench//EN", "BEGIN:VTODO",
         "UID:" + uid, "DTSTAMP:" + created, "CREATED:" + created,
         "SUMMARY:" + _text(_fill(rng, rng.choice(TASKS))),
         "DUE;VALUE=DATE:" + due.strftime("%Y%m%d"), f"PRIORITY:{rng.choice([0, 1, 5, 9])}"]
    if rng.random() < 0.3:
        t += ["STATUS:COMPLETED", "COMPLETED:" + created, "PERCENT-COMPLETE:100"]
    else:
        t.append("STATUS:NEEDS-ACTION")
    if rng.random() < 0.4:
        t.append("DESCRIPTION:" + _text(rng.choice(DESCRIPTION)))
    t += ["END:VTODO", "END:VCALENDAR"]
    return uid, _join(t)


def make_contact(i, seed=SEED):
    """(uid, vCard 3.0 bytes) of contact i."""
    rng = _rng(seed, "contact", i)
    uid = _uuid(rng)
    first, last = rng.choice(FIRST if rng.random() < 0.35 else ASCII_FIRST)
    local = (re.sub(r"[^a-z]", "", first.lower()) or "c%d" % i) + "." + (
        re.sub(r"[^a-z]", "", last.lower()) or "x") + str(i)
    v = ["BEGIN:VCARD", "VERSION:3.0",
         rng.choice(["PRODID:-//Apple Inc.//iOS 17.2//EN", "PRODID:-//Sabre//Sabre VObject//EN",
                     "PRODID:-//mailfs bench//EN"]),
         "UID:" + uid, "FN:" + _text(f"{first} {last}"),
         "N:%s;%s;;;" % (_text(last), _text(first)),
         "EMAIL;TYPE=INTERNET,WORK:" + local + "@example.org"]
    if rng.random() < 0.4:
        v.append("EMAIL;TYPE=INTERNET,HOME:" + local + "@mail.example.net")
    v.append("TEL;TYPE=CELL:+49 1%02d %07d" % (rng.randrange(50, 80), rng.randrange(10**7)))
    if rng.random() < 0.5:
        v.append("TEL;TYPE=WORK,VOICE:+33 1 %02d %02d %02d %02d" % tuple(
            rng.randrange(100) for _ in range(4)))
    if rng.random() < 0.7:
        v += ["ORG:" + _text(rng.choice(ORGS)), "TITLE:" + _text(rng.choice(TITLES))]
    if rng.random() < 0.5:
        city, code, country = rng.choice(CITIES)
        v.append("ADR;TYPE=HOME:;;%s;%s;;%s;%s" % (_text(rng.choice(STREETS)), _text(city),
                                                  _text(code), _text(country)))
    if rng.random() < 0.3:
        v.append("BDAY:%04d-%02d-%02d" % (rng.randrange(1950, 2005), rng.randrange(1, 13),
                                          rng.randrange(1, 29)))
    if rng.random() < 0.25:
        v.append("NOTE:" + _text(rng.choice(DESCRIPTION)))
    if rng.random() < 0.2:
        v.append("CATEGORIES:" + rng.choice(["Work", "Family", "Friends", "VIP"]))
    v += ["REV:" + _stamp(rng), "END:VCARD"]
    return uid, _join(v)


class Corpus:
    """The collections of one run: {key: (display name, kind, {name: bytes})}."""

    def __init__(self, events, contacts, tasks, second, seed):
        main, other, book = {}, {}, {}
        n_second = min(second, events // 2)  # the second calendar stays the small one
        for i in range(events):
            uid, data = make_event(i, seed)
            (other if i >= events - n_second else main)[uid + ".ics"] = data
        for i in range(tasks):
            uid, data = make_task(i, seed)
            other[uid + ".ics"] = data
        for i in range(contacts):
            uid, data = make_contact(i, seed)
            book[uid + ".vcf"] = data
        self.collections = {"calendar": ("Calendar", "cal", main),
                            "personal": ("Personal", "cal", other),
                            "contacts": ("Contacts", "card", book)}
        if not other:
            del self.collections["personal"]
        self.events, self.contacts, self.tasks, self.second = events, contacts, tasks, n_second

    def count(self, kind=None):
        return sum(len(items) for _, k, items in self.collections.values()
                   if kind in (None, k))

    def nbytes(self, kind=None):
        return sum(sum(map(len, items.values())) for _, k, items in self.collections.values()
                   if kind in (None, k))

    def describe(self):
        parts = [f"{self.events:,} events"]
        if self.tasks:
            parts.append(f"{self.tasks:,} tasks")
        parts.append(f"{self.contacts:,} contacts")
        ev = self.nbytes("cal") / max(1, self.events + self.tasks)
        cv = self.nbytes("card") / max(1, self.contacts)
        cols = ", ".join(f"{name} ({len(items):,})" for name, _, items
                         in self.collections.values())
        return (f"{' + '.join(parts)} = {self.count():,} items, "
                f"{self.nbytes() / 1e6:.2f} MB (events {ev:.0f} B, contacts {cv:.0f} B "
                f"on average) in {cols}")


# --- servers ----------------------------------------------------------------------


def _radicale_class():
    import radicale

    class LoggingRadicale(radicale.Radicale):
        """Radicale at log level info: one line per request and per response
        (with the time it took), for counting requests."""

        def _write_config(self):
            super()._write_config()
            with open(self.conf) as f:
                text = f.read()
            with open(self.conf, "w") as f:
                f.write(text.replace("level = warning", "level = info"))
    return LoggingRadicale


_RAD_RESPONSE = re.compile(r"\] (\w+) response status for '([^']*)'.*? in ([\d.]+) seconds: "
                           r"(\d+)")
_XAN_ACCESS = re.compile(r'aiohttp\.access:\S+ \[[^\]]*\] "(\w+) (\S+) HTTP/[\d.]+" (\d+) (\d+)')


class Server:
    """One server with the corpus loaded: its URLs, paths and log."""

    def __init__(self, name, tmp, corpus, log):
        self.name, self.log = name, log
        base = os.path.join(tmp, name)
        os.makedirs(base)
        if name == "radicale":
            self.srv = _radicale_class()(base, users={USER: PASSWORD})
            self.user, self.password = USER, PASSWORD
            home = f"/{USER}/"
            self.paths = {"calendar": home + "calendar/", "personal": home + "personal/",
                          "contacts": home + "contacts/"}
        else:
            import xandikos
            self.srv = xandikos.Xandikos(base)
            self.user = self.password = None  # Xandikos 0.2.8 has no authentication
            self.paths = {"calendar": xandikos.DEFAULT_CALENDAR,
                          "personal": "/user/calendars/personal/",
                          "contacts": xandikos.DEFAULT_ADDRESSBOOK}
        self.srv.start()
        self.url = self.srv.url
        self.log(f"{name} on {self.url} in {base}")
        self.load(corpus)

    def client(self):
        return self.srv.client(USER) if self.user else self.srv.client()

    def load(self, corpus):
        t0 = time.monotonic()
        kw = {"user": USER} if self.user else {}
        self.expected = {}
        for key, (display, kind, items) in corpus.collections.items():
            path = self.paths[key]
            if not self.client().exists(path):
                if kind == "cal":
                    self.srv.make_calendar(path, display, **kw)
                else:
                    self.srv.make_addressbook(path, display, **kw)
            self.srv.bulk_put(path, items)
            self.expected[path] = len(items)
        # Check with an independent client (and warm the server: it parses
        # every item on the first listing and keeps a cache).
        for path, n in self.expected.items():
            got = self.client().etags(path)
            if len(got) != n or not all(got.values()):
                raise RuntimeError(f"{self.name}: {path} lists {len(got)} items with etags, "
                                   f"{n} were loaded")
        self.log(f"{self.name}: loaded and verified {sum(self.expected.values()):,} items "
                 f"in {len(self.expected)} collections in {time.monotonic() - t0:.1f} s")
        self.warm()

    def warm(self):
        """What the clients ask for, once, before anything is timed: every
        item's data (calendar-query / addressbook-query) and a sync-collection
        from scratch (Radicale computes and caches its history state then)."""
        t0 = time.monotonic()
        c = self.client()
        for path in self.expected:
            card = "contacts" in path
            ns = ('xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav"' if card else
                  'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"')
            q = (f'<?xml version="1.0" encoding="utf-8"?><A:addressbook-query {ns}><D:prop>'
                 '<D:getetag/><A:address-data/></D:prop></A:addressbook-query>' if card else
                 f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query {ns}><D:prop>'
                 '<D:getetag/><C:calendar-data/></D:prop><C:filter>'
                 '<C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>')
            st, _, data = c.request("REPORT", path, q, {"Depth": "1"})
            n = data.count(b"BEGIN:VCARD" if card else b"BEGIN:VCALENDAR")
            if st != 207 or n != self.expected[path]:
                raise RuntimeError(f"{self.name}: warm-up query of {path}: {st}, {n} items")
            s = ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
                 '<D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>'
                 '</D:sync-collection>')
            st, _, _ = c.request("REPORT", path, s, {"Depth": "1"})
            if st != 207:
                raise RuntimeError(f"{self.name}: warm-up sync-collection of {path}: {st}")
        self.log(f"{self.name}: warm-up in {time.monotonic() - t0:.1f} s")
        self.costs = self.probe_costs()
        self.log(f"{self.name}: request costs: {self.describe_costs()}")

    def home(self):
        return os.path.dirname(self.paths["calendar"].rstrip("/")) + "/"

    def probe_costs(self, n=3):
        """What the server takes for the requests both clients rely on, best of
        n, on the largest calendar (context for the figures: what a client can
        save is bounded by them)."""
        c = self.client()
        cal = self.paths["calendar"]
        hrefs = sorted(c.etags(cal))[:100]

        def best(method, path, body, depth):
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                st, _, _ = c.request(method, path, body, {"Depth": str(depth)})
                ts.append(time.perf_counter() - t0)
                if st != 207:
                    return None
            return min(ts)

        def propfind(*props):
            return ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" '
                    'xmlns:C="urn:ietf:params:xml:ns:caldav" '
                    'xmlns:CS="http://calendarserver.org/ns/"><D:prop>%s</D:prop></D:propfind>'
                    % "".join("<%s/>" % p for p in props))
        multiget = ('<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget xmlns:D="DAV:" '
                    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/>'
                    '<C:calendar-data/></D:prop>%s</C:calendar-multiget>'
                    % "".join(f"<D:href>{urllib.parse.quote(h)}</D:href>" for h in hrefs))
        query = ('<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" '
                 'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/>'
                 '<C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/>'
                 '</C:filter></C:calendar-query>')
        home = self.home()
        return {
            "n_calendar": self.expected[cal],
            "list_etags": best("PROPFIND", cal, propfind("D:getetag"), 1),
            "multiget_100": best("REPORT", cal, multiget, 1),
            "query_all": best("REPORT", cal, query, 1),
            "home_all_props": best("PROPFIND", home, propfind(
                "D:resourcetype", "D:displayname", "CS:getctag", "D:sync-token",
                "C:supported-calendar-component-set"), 1),
            "home_ctag": best("PROPFIND", home, propfind("D:resourcetype", "CS:getctag"), 1),
            "home_token": best("PROPFIND", home, propfind("D:resourcetype", "D:sync-token"), 1),
            "home_plain": best("PROPFIND", home, propfind("D:resourcetype", "D:displayname"), 1),
        }

    def describe_costs(self):
        k = self.costs

        def ms(v):
            return "–" if v is None else f"{v * 1000:.0f} ms"
        return (f"on the {k['n_calendar']:,}-item calendar: PROPFIND Depth 1 of every "
                f"getetag {ms(k['list_etags'])}, calendar-multiget of 100 items "
                f"{ms(k['multiget_100'])}, calendar-query of all {ms(k['query_all'])}; on the "
                f"calendar home {self.home()} (PROPFIND Depth 1): resourcetype + displayname "
                f"{ms(k['home_plain'])}, + getctag {ms(k['home_ctag'])}, + sync-token "
                f"{ms(k['home_token'])}, resourcetype + displayname + getctag + sync-token + "
                f"supported-calendar-component-set {ms(k['home_all_props'])}")

    def log_offset(self):
        try:
            return os.path.getsize(self.srv.log_path)
        except OSError:
            return 0

    def requests_since(self, offset):
        """What the server logged since offset: {"requests": n, "methods":
        {method: n}, "server_s": seconds answering (Radicale), "bytes": response
        bytes (Xandikos)}."""
        with open(self.srv.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        out = {"requests": 0, "methods": {}, "server_s": None, "bytes": None, "errors": 0}
        if self.name == "radicale":
            out["server_s"] = 0.0
            for m in _RAD_RESPONSE.finditer(text):
                out["requests"] += 1
                out["methods"][m.group(1)] = out["methods"].get(m.group(1), 0) + 1
                out["server_s"] += float(m.group(3))
                out["errors"] += int(m.group(4)) >= 400
        else:
            out["bytes"] = 0
            for m in _XAN_ACCESS.finditer(text):
                out["requests"] += 1
                out["methods"][m.group(1)] = out["methods"].get(m.group(1), 0) + 1
                out["bytes"] += int(m.group(4))
                out["errors"] += int(m.group(3)) >= 400
        return out

    def version(self):
        mod = "radicale" if self.name == "radicale" else "xandikos"
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", mod], capture_output=True,
                           text=True)
        return r.stdout.strip() or "?"

    def stop(self):
        self.srv.stop()


# --- contenders --------------------------------------------------------------------


def _norm(href):
    """An href (or URL) as a decoded path ending in '/', for comparing."""
    p = urllib.parse.unquote(urllib.parse.urlsplit(href).path or href)
    return p if p.endswith("/") else p + "/"


class Contender:
    name = ""

    def __init__(self, b, server, run_dir):
        self.b, self.server, self.run_dir = b, server, run_dir

    def measure(self, argv, log, key, env=None, rusage=False):
        """Run argv under bench.run_measured, count the server's requests; add
        KEY (seconds), KEY_requests ... to the results. Returns the rc."""
        off = self.server.log_offset()
        wall, rc, rss, cpu = bench.run_measured(argv, log, env=env, timeout=self.b.args.timeout,
                                                rusage=rusage)
        if rc != 0:
            raise bench.failure(f"{self.name} ({' '.join(os.path.basename(a) for a in argv[:1])}"
                                f" {key})", rc, log)
        time.sleep(0.05)  # let the server's last log line land
        req = self.server.requests_since(off)
        self.b.add(self.server.name, f"{self.name}.{key}", wall)
        self.b.add(self.server.name, f"{self.name}.{key}_requests", req["requests"])
        if req["server_s"] is not None:
            self.b.add(self.server.name, f"{self.name}.{key}_server", req["server_s"])
        if req["bytes"] is not None:
            self.b.add(self.server.name, f"{self.name}.{key}_bytes", req["bytes"] / 1e6)
        self.b.detail(self.server.name, f"{self.name}.{key}_methods", req["methods"])
        if req["errors"]:
            self.b.detail(self.server.name, f"{self.name}.{key}_http_errors", req["errors"])
        if rusage:
            self.b.add(self.server.name, f"{self.name}.{key}_rss", rss / 1024)
            self.b.add(self.server.name, f"{self.name}.{key}_cpu", cpu)
        return wall


class Vdirsyncer(Contender):
    """vdirsyncer 0.19: a caldav pair and a carddav pair from the server to
    filesystem storage, collections "from a" (every calendar, every address
    book); its defaults otherwise (atomic writes with fsync per item)."""
    name = "vdirsyncer"

    def run(self, i):
        s = self.server
        root = bench.fresh_dir(os.path.join(self.run_dir, "vdirsyncer"))
        cfg = os.path.join(root, "config")
        auth = (f'username = "{s.user}"\npassword = "{s.password}"\n' if s.user else "")
        with open(cfg, "w") as f:
            f.write(f"""# written by tests/bench/dav_bench.py
[general]
status_path = "{root}/status/"

[pair bench_cal]
a = "bench_cal_remote"
b = "bench_cal_local"
collections = ["from a"]

[storage bench_cal_remote]
type = "caldav"
url = "{s.url}"
{auth}
[storage bench_cal_local]
type = "filesystem"
path = "{root}/calendars/"
fileext = ".ics"

[pair bench_card]
a = "bench_card_remote"
b = "bench_card_local"
collections = ["from a"]

[storage bench_card_remote]
type = "carddav"
url = "{s.url}"
{auth}
[storage bench_card_local]
type = "filesystem"
path = "{root}/contacts/"
fileext = ".vcf"
""")
        log = os.path.join(self.b.tmp, f"vdirsyncer-{s.name}.log")
        env = dict(os.environ, HOME=root, XDG_CONFIG_HOME=root, LC_ALL="C.UTF-8")
        with open(log, "ab") as out:
            out.write(f"\n$ yes | {VDIRSYNCER} -c {cfg} discover\n".encode())
            out.flush()
            r = subprocess.run([VDIRSYNCER, "-c", cfg, "discover"], input=b"y\n" * 100,
                               stdout=out, stderr=out, env=env, timeout=self.b.args.timeout)
        if r.returncode != 0:
            raise bench.failure("vdirsyncer discover", r.returncode, log)
        argv = [VDIRSYNCER, "-c", cfg, "sync"]
        self.measure(argv, log, "initial", env=env, rusage=True)
        self.b.add(s.name, "vdirsyncer.durable",
                   self.b.values[s.name]["vdirsyncer.initial"][-1] + bench.timed_sync())
        self.verify(root)
        bench.settle()
        self.measure(argv, log, "nochange", env=env)
        self.verify(root)
        bench.drop_dir(root)

    def verify(self, root):
        """Every collection of the server as a directory of as many files."""
        got = {}
        for sub, ext in (("calendars", ".ics"), ("contacts", ".vcf")):
            base = os.path.join(root, sub)
            for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
                p = os.path.join(base, d)
                if os.path.isdir(p):
                    got[(sub, d)] = sum(1 for n in os.listdir(p) if n.endswith(ext))
        want = sorted(n for n in self.server.expected.values() if n)
        have = sorted(n for n in got.values() if n)
        if have != want:
            raise RuntimeError(f"vdirsyncer holds {got}, the server "
                               f"{self.server.expected}: it did not sync everything")


class Mailfs(Contender):
    name = "mailfs"

    def run(self, i):
        s = self.server
        root = bench.fresh_dir(os.path.join(self.run_dir, "mailfs"))
        cfg = os.path.join(root, "config")
        with open(cfg, "w") as f:
            f.write(f"""; written by tests/bench/dav_bench.py
[account {ACCOUNT}]
caldav = {s.url}
carddav = {s.url}
user = {s.user or USER}
password_command = echo {s.password or PASSWORD}
tls = none
""")
        data = os.path.join(root, "data")
        os.makedirs(data)
        log = os.path.join(self.b.tmp, f"mailfs-{s.name}.log")
        env = dict(os.environ, XDG_DATA_HOME=data, XDG_CONFIG_HOME=os.path.join(root, "xdg"))
        argv = [self.b.mailfs, "--config", cfg, "sync", ACCOUNT]
        self.measure(argv, log, "initial", env=env, rusage=True)
        self.b.add(s.name, "mailfs.durable",
                   self.b.values[s.name]["mailfs.initial"][-1] + bench.timed_sync())
        self.verify(data)
        bench.settle()
        self.measure(argv, log, "nochange", env=env)
        self.verify(data)
        bench.drop_dir(root)

    def verify(self, data):
        """The store must hold every item of every collection with its content
        (store/store.h: items rows with href and etag; one file per item under
        content/)."""
        store = os.path.join(data, "mailfs", ACCOUNT)
        db = sqlite3.connect(f"file:{os.path.join(store, 'store.db')}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT f.server_name, COUNT(DISTINCT i.href), SUM(i.has_content), "
                "SUM(i.etag IS NULL), SUM(i.error IS NOT NULL) FROM items i "
                "JOIN folders f ON f.id = i.folder_id "
                "WHERE i.href IS NOT NULL GROUP BY f.server_name").fetchall()
        finally:
            db.close()
        got = {_norm(r[0]): r[1] for r in rows if r[0]}
        want = {_norm(p): n for p, n in self.server.expected.items() if n}
        problems = []
        if got != want:
            problems.append(f"items per collection {got}, the server has {want}")
        if any(r[2] != r[1] for r in rows):
            problems.append("items without content: " + ", ".join(
                f"{r[0]} {r[1] - r[2]}" for r in rows if r[2] != r[1]))
        if any(r[3] for r in rows):
            problems.append("items without etag: " + ", ".join(
                f"{r[0]} {r[3]}" for r in rows if r[3]))
        nfiles = sum(len(files) for _, _, files in os.walk(os.path.join(store, "content")))
        if nfiles < sum(want.values()):
            problems.append(f"{nfiles} content files for {sum(want.values())} items")
        if problems:
            raise RuntimeError("mailfs store: " + "; ".join(problems))
        errors = sum(r[4] or 0 for r in rows)
        if errors:
            self.b.detail(self.server.name, "mailfs.items_with_error", errors)


CONTENDERS = [Vdirsyncer, Mailfs]


# --- results ----------------------------------------------------------------------

class Metric:
    def __init__(self, key, label, unit, fmt="{:.3f}"):
        self.key, self.label, self.unit, self.fmt = key, label, unit, fmt


METRICS = [
    Metric("vdirsyncer.initial", "vdirsyncer initial sync (`vdirsyncer sync`, fresh)", "s"),
    Metric("vdirsyncer.durable", "vdirsyncer initial + sync(2) after it", "s"),
    Metric("vdirsyncer.nochange", "vdirsyncer no-change sync", "s"),
    Metric("vdirsyncer.initial_requests", "vdirsyncer initial: requests", "", "{:.0f}"),
    Metric("vdirsyncer.nochange_requests", "vdirsyncer no-change: requests", "", "{:.0f}"),
    Metric("vdirsyncer.initial_server", "vdirsyncer initial: server time (sum over requests, Radicale log)",
           "s"),
    Metric("vdirsyncer.nochange_server", "vdirsyncer no-change: server time", "s"),
    Metric("vdirsyncer.initial_bytes", "vdirsyncer initial: bytes from the server", "MB",
           "{:.2f}"),
    Metric("vdirsyncer.initial_cpu", "vdirsyncer initial: CPU user+sys", "s", "{:.2f}"),
    Metric("vdirsyncer.initial_rss", "vdirsyncer initial: peak RSS", "MiB", "{:.1f}"),
    Metric("mailfs.initial", "mailfs initial sync (`mailfs sync`, fresh store)", "s"),
    Metric("mailfs.durable", "mailfs initial + sync(2) after it", "s"),
    Metric("mailfs.nochange", "mailfs no-change sync", "s"),
    Metric("mailfs.initial_requests", "mailfs initial: requests", "", "{:.0f}"),
    Metric("mailfs.nochange_requests", "mailfs no-change: requests", "", "{:.0f}"),
    Metric("mailfs.initial_server", "mailfs initial: server time (sum over requests, Radicale log)", "s"),
    Metric("mailfs.nochange_server", "mailfs no-change: server time", "s"),
    Metric("mailfs.initial_bytes", "mailfs initial: bytes from the server", "MB", "{:.2f}"),
    Metric("mailfs.initial_cpu", "mailfs initial: CPU user+sys", "s", "{:.2f}"),
    Metric("mailfs.initial_rss", "mailfs initial: peak RSS", "MiB", "{:.1f}"),
]

# (label, numerator, denominator, target text, check or None, note)
RATIOS = [
    ("vdirsyncer / mailfs, initial sync", "vdirsyncer.initial", "mailfs.initial", "≥ 5",
     lambda v: v >= 5, ""),
    ("vdirsyncer / mailfs, no-change sync", "vdirsyncer.nochange", "mailfs.nochange", "≥ 20",
     lambda v: v >= 20, ""),
    ("vdirsyncer / mailfs, initial + sync(2)", "vdirsyncer.durable", "mailfs.durable", "",
     None, "for context: vdirsyncer fsyncs every item, mailfs leaves its content "
     "files to writeback"),
    ("vdirsyncer / mailfs, requests (initial)", "vdirsyncer.initial_requests",
     "mailfs.initial_requests", "", None, "for context"),
]


class Bench:
    def __init__(self, args, log, tmp, mailfs):
        self.args, self.log, self.tmp, self.mailfs = args, log, tmp, mailfs
        self.values = {}    # server -> metric key -> [value per run]
        self.details = {}   # server -> key -> [value per run]
        self.failed = {}    # server -> contender -> reason
        self.costs = {}     # server -> its request costs, described

    def add(self, server, key, value):
        self.values.setdefault(server, {}).setdefault(key, []).append(value)

    def detail(self, server, key, value):
        self.details.setdefault(server, {}).setdefault(key, []).append(value)

    def median(self, server, key):
        v = self.values.get(server, {}).get(key)
        return statistics.median(v) if v else None


def _methods(ms):
    """'{"PROPFIND": 3, "REPORT": 5}' in one line, most first."""
    return ", ".join(f"{n} {m}" for m, n in sorted(ms.items(), key=lambda x: -x[1]))


def report(b, mach, corpus, servers_info, extra):
    runs = b.args.runs
    L = [f"## mailfs CalDAV/CardDAV benchmark — {mach['date']}", ""]
    L.append(f"- corpus: {corpus.describe()} (seed {b.args.seed}); loaded straight into "
             "the server's storage, checked over HTTP, server caches warmed before timing")
    L.append(f"- machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['memory_gib']} GiB, "
             f"Linux {mach['kernel']}, {mach['os']}")
    L.append(f"- versions: {mach['mailfs']}; vdirsyncer {mach['vdirsyncer']}; "
             + "; ".join(f"{n} {v}" for n, v in servers_info) + f"; Python {mach['python']}")
    L.append(f"- destinations (vdirsyncer's files, mailfs's store): {b.dest_describe}")
    L.append(f"- method: {runs} runs per contender, interleaved (vdirsyncer, mailfs, ...); "
             "each run is a fresh destination: initial sync, then (after a pause to the "
             "next second) a no-change sync; median of the runs, min the best; "
             "`vdirsyncer discover` not timed; requests counted in the server's log")
    if any(n == "radicale" for n, _ in servers_info):
        L.append("- Radicale runs with fsync off (its `_filesystem_fsync = False`, as in "
                 "tests/servers/radicale.py) and log level info (for the request count); "
                 "Xandikos 0.2.8 has no authentication, so its runs send none")
    for line in extra:
        L.append(f"- {line}")
    L.append("")
    for server in b.servers:
        L.append(f"### {server}")
        L.append("")
        head = ["measurement", "unit"] + [f"run {i + 1}" for i in range(runs)] + ["median",
                                                                                   "min"]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * 2 + "---:|" * (runs + 2))
        vals_of = b.values.get(server, {})
        for m in METRICS:
            vals = vals_of.get(m.key)
            name = m.key.split(".")[0]
            if vals:
                cells = [m.fmt.format(v) for v in vals] + [""] * (runs - len(vals))
                cells.append("**" + m.fmt.format(statistics.median(vals)) + "**")
                cells.append(m.fmt.format(min(vals)))
            elif name in b.failed.get(server, {}) and m.key.endswith(".initial"):
                cells = ["failed"] + [""] * (runs + 1)
            else:
                continue
            L.append(f"| {m.label} | {m.unit} | " + " | ".join(cells) + " |")
        L.append("")
        det = b.details.get(server, {})
        for who in ("vdirsyncer", "mailfs"):
            for phase in ("initial", "nochange"):
                ms = det.get(f"{who}.{phase}_methods")
                if ms:
                    L.append(f"- {who} {phase}, requests (run 1): {_methods(ms[0])}"
                             + (f"; HTTP errors: {det[f'{who}.{phase}_http_errors']}"
                                if det.get(f"{who}.{phase}_http_errors") else ""))
        if server in b.costs:
            L.append(f"- {server} request costs, best of 3 (independent client): "
                     f"{b.costs[server]}")
        if det.get("mailfs.items_with_error"):
            L.append(f"- mailfs stored items with a parse error (per check): "
                     f"{det['mailfs.items_with_error']}")
        for who, why in b.failed.get(server, {}).items():
            L.append(f"- {who}: {why}")
        L.append("")
    L.append("| ratio (of medians) | " + " | ".join(b.servers) + " | DESIGN §8 target |")
    L.append("|---|" + "---:|" * len(b.servers) + "---|")
    verdicts = []
    for label, num, den, target, check, note in RATIOS:
        cells = []
        for server in b.servers:
            a, d = b.median(server, num), b.median(server, den)
            if a is None or not d:
                cells.append("–")
                continue
            v = a / d
            cell = f"{v:.1f}×"
            if check:
                ok = check(v)
                cell += " (met)" if ok else " (**missed**)"
                verdicts.append(ok)
            cells.append(cell)
        L.append(f"| {label} | " + " | ".join(cells) + f" | {target or note} |")
    L.append("")
    return "\n".join(L) + "\n"


def machine_info(mailfs):
    m = bench.machine(tempfile.gettempdir())
    for k in ("dovecot", "mbsync", "filesystem"):
        m.pop(k, None)
    ver = bench._first_line([mailfs, "--version"]) if mailfs else "?"
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(mailfs).st_mtime))
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                            "--", "common", "formats", "store", "sync", "fs"],
                           capture_output=True, text=True).stdout.strip()
    where = os.path.relpath(mailfs, REPO) if mailfs.startswith(REPO + "/") else mailfs
    m["mailfs"] = (f"{ver} ({where} built {built}, git {head or '?'}"
                   f"{' + uncommitted changes' if dirty else ''})")
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "vdirsyncer"],
                       capture_output=True, text=True)
    m["vdirsyncer"] = r.stdout.strip() or "?"
    return m


def find_mailfs(given, log):
    if given:
        p = os.path.abspath(given)
        if not os.access(p, os.X_OK):
            sys.exit(f"dav_bench: no mailfs binary at {given}")
        return p
    p = os.path.join(REPO, "build", "fs", "mailfs")
    if not os.access(p, os.X_OK):
        log("no build/fs/mailfs: bash scripts/build")
        subprocess.run(["bash", os.path.join(REPO, "scripts", "build")], check=True)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--events", type=int, default=2000, help="events (default 2000)")
    ap.add_argument("--contacts", type=int, default=2000, help="contacts (default 2000)")
    ap.add_argument("--tasks", type=int, default=0,
                    help="tasks, in the second calendar (default 0)")
    ap.add_argument("--second", type=int, default=100, metavar="N",
                    help="of the events, how many go to a second, small calendar "
                         "(default 100; 0: one calendar)")
    ap.add_argument("--server", choices=("radicale", "xandikos", "both"), default="both")
    ap.add_argument("--runs", type=int, default=3, help="runs per contender (median)")
    ap.add_argument("--only", default="", metavar="LIST",
                    help="comma-separated subset of: vdirsyncer,mailfs")
    ap.add_argument("--mailfs", metavar="BIN", help="mailfs binary (default build/fs/mailfs)")
    ap.add_argument("--out", default=os.path.join(HERE, "dav_results.md"), metavar="FILE",
                    help="write the Markdown report here (default tests/bench/dav_results.md;"
                         " '-' for none)")
    ap.add_argument("--json", metavar="FILE", help="also write every value as JSON")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--tmpdir", default=None, help="where servers, logs and (--dest-fs "
                    "tmpdir) destinations live (default $TMPDIR or /tmp)")
    ap.add_argument("--dest-fs", choices=("auto", "loop", "tmpdir"), default="auto",
                    help="as in bench.py: a journaled ext4 loop image when the temporary "
                         "directory is on ext4 without a journal (auto)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per command")
    ap.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                    help="wait up to this long for other processes to leave the CPUs idle")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench._on_signal)
    only = {x for x in args.only.split(",") if x}
    if only - {c.name for c in CONTENDERS}:
        ap.error(f"--only: unknown {','.join(sorted(only - {c.name for c in CONTENDERS}))}")
    setup(log)
    mailfs = find_mailfs(args.mailfs, log)
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mailfs-davbench-", dir=args.tmpdir)
    # A copy: the working tree is shared, and a rebuild during the run (ninja
    # rewrites build/fs/mailfs) must neither fail a run nor mix two versions.
    snap = os.path.join(tmp, "mailfs")
    shutil.copy2(mailfs, snap)
    b = Bench(args, log, tmp, snap)
    b.servers = ["radicale", "xandikos"] if args.server == "both" else [args.server]
    dest = None
    servers = []
    status = 1
    try:
        mach = machine_info(mailfs)
        t0 = time.monotonic()
        corpus = Corpus(args.events, args.contacts, args.tasks, args.second, args.seed)
        log(f"corpus: {corpus.describe()} generated in {time.monotonic() - t0:.1f} s")
        dest = bench.DestFs(tmp, args.dest_fs, 2 * 2**30, log)
        b.dest_describe = dest.describe
        cpus, top = bench.other_load_now()
        deadline = time.monotonic() + args.wait_idle
        while cpus > 0.1 and time.monotonic() < deadline:
            log(f"machine busy: other processes use {bench.describe_load(cpus, top)}; "
                f"waiting (--wait-idle, {deadline - time.monotonic():.0f} s left)")
            time.sleep(min(30, max(0, deadline - time.monotonic())))
            cpus, top = bench.other_load_now()
        if cpus > 0.1:
            log(f"WARNING: other processes use {bench.describe_load(cpus, top)}: "
                "the figures will be skewed")
        load = bench.OtherLoad()
        info = []
        failed = False
        for name in b.servers:
            server = Server(name, tmp, corpus, log)
            servers.append(server)
            info.append((name.capitalize(), server.version()))
            b.costs[name] = server.describe_costs()
            run_dir = os.path.join(dest.root, name)
            os.makedirs(run_dir)
            contenders = [cls(b, server, run_dir) for cls in CONTENDERS
                          if not only or cls.name in only]
            for i in range(args.runs):
                for c in list(contenders):
                    try:
                        c.run(i)
                    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                        log(f"{name} run {i + 1}/{args.runs} {c.name}: FAILED: {e}")
                        b.failed.setdefault(name, {})[c.name] = (
                            f"failed in run {i + 1}: " + str(e).split("\n")[0])
                        for k in list(b.values.get(name, {})):
                            if k.startswith(c.name + "."):
                                del b.values[name][k]
                        contenders.remove(c)
                        failed = True
                        continue
                    v = b.values[name]
                    log(f"{name} run {i + 1}/{args.runs} {c.name}: initial "
                        f"{v[c.name + '.initial'][-1]:.3f} s "
                        f"({v[c.name + '.initial_requests'][-1]:.0f} requests), no-change "
                        f"{v[c.name + '.nochange'][-1]:.3f} s "
                        f"({v[c.name + '.nochange_requests'][-1]:.0f} requests)")
            server.stop()
        elapsed = time.monotonic() - t_start
        cpus, top = load.result()
        extra = [f"whole benchmark run: {elapsed:.0f} s (including loading the servers)",
                 f"other processes during the measurements: {bench.describe_load(cpus, top)}"
                 + ("" if cpus <= 0.1 else " — **the machine was not idle: figures skewed**")]
        md = report(b, mach, corpus, info, extra)
        print(md)
        if args.out and args.out != "-":
            with open(args.out, "w") as f:
                f.write(md)
            log(f"report written to {args.out}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": mach, "args": vars(args), "corpus": corpus.describe(),
                           "server_costs": {s.name: s.costs for s in servers},
                           "values": b.values, "details": b.details, "failed": b.failed,
                           "seconds": elapsed, "other_cpus": cpus, "other_top": top},
                          f, indent=1)
        status = 1 if failed else 0
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for p in list(bench._children):
            bench._kill(p)
        for s in servers:
            try:
                s.stop()
            except Exception as e:  # keep cleaning up
                log(f"stopping {s.name}: {e}")
        if dest is not None:
            dest.close()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
