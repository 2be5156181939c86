"""CalDAV/CardDAV into the tree (DESIGN sections 2 and 4): the initial sync
of events, tasks, notes and contacts with their names and the server's exact
bytes, further collections as subdirectories, a collection of several
components split between Calendar/ and Tasks/, recurrence overrides kept in
one file; changes made on the server (create, edit, delete of each type)
after `mailfs sync`; items the server holds that are not valid; a sync
token the server no longer accepts. Against Radicale and Xandikos (see
dav_env for how they differ); the server side is read with DavClient."""

import datetime
import glob
import os
import shutil
import subprocess
import time

from dav_env import (dav, dav_server, event, files, ical, journal, listing,  # noqa: F401
                     log_tail, prop, read, state, sync, todo, vcard, vevent, wait_for,
                     wait_state, write)
from mailfs_testlib import xattr


# --- 1. the initial sync ------------------------------------------------------------------

RECURRING = ical(
    vevent("rec-1", "Weekly sync", "20260105T090000Z", "RRULE:FREQ=WEEKLY;COUNT=10"),
    vevent("rec-1", "Weekly sync (moved)", "20260113T110000Z",
           "RECURRENCE-ID:20260112T090000Z"),
    vevent("rec-1", "Weekly sync (long)", "20260119T090000Z",
           "RECURRENCE-ID:20260119T090000Z\nDTEND:20260119T120000Z"))

NOTE_TEXT = "Erste Zeile: Äpfel, Birnen; Kirschen\nZweite Zeile\n\nNach einer Leerzeile.\n"


def populate(dav):
    """Items of every type in the default collections, a second calendar
    (events only), a calendar of events and tasks, a second address book.
    Returns {path in the mount: server path}."""
    team = dav.calendar("team", "Team Café ☕", comps=("VEVENT",))
    work = dav.calendar("work", "Work", comps=("VEVENT", "VTODO"))
    friends = dav.addressbook("friends", "Freunde – Ünïcode")
    spec = {
        "Calendar/2026-01-05 10.00 Standup.ics":
            (dav.cal + "standup.ics", event("standup", "Standup")),
        "Calendar/2026-01-06 Heilige Drei Könige.ics":
            (dav.cal + "feiertag.ics", event("feiertag", "Heilige Drei Könige", "20260106")),
        "Calendar/2026-01-05 09.00 Weekly sync.ics":
            (dav.cal + "rec-1.ics", RECURRING),
        "Tasks/2026-01-10 Pay rent.ics":
            (dav.cal + "rent.ics", todo("rent", "Pay rent", "20260110")),
        "Tasks/2026-01-11 Submit report.ics":
            (dav.cal + "report.ics", todo("report", "Submit report", "20260111T170000Z")),
        "Tasks/Call mum.ics":
            (dav.cal + "mum.ics", todo("mum", "Call mum")),
        "Notes/Ideen für 2026.txt":
            (dav.cal + "ideas.ics", journal("ideas", "Ideen für 2026", NOTE_TEXT)),
        "Contacts/Jürgen Müller.vcf":
            (dav.book + "jm.vcf", vcard("jm", "Jürgen Müller", "EMAIL:jm@example.com")),
        "Contacts/Zoë Ångström.vcf":
            (dav.book + "zoe.vcf", vcard("zoe", "Zoë Ångström")),
        "Calendar/Team Café ☕/2026-02-01 09.00 Kick-off.ics":
            (team + "kickoff.ics", event("kickoff", "Kick-off", "20260201T090000Z")),
        "Calendar/Work/2026-03-02 08.30 Planning.ics":
            (work + "planning.ics", event("planning", "Planning", "20260302T083000Z")),
        "Tasks/Work/2026-03-06 Write minutes.ics":
            (work + "minutes.ics", todo("minutes", "Write minutes", "20260306")),
        "Contacts/Freunde – Ünïcode/Ørjan Ødegård.vcf":
            (friends + "oo.vcf", vcard("oo", "Ørjan Ødegård")),
        # a '/' in a title becomes U+FF0F; no title at all reads "(no title)"
        "Calendar/2026-01-07 12.00 Q1／Q2 review.ics":
            (dav.cal + "q.ics", event("q", "Q1/Q2 review", "20260107T120000Z")),
        "Calendar/2026-01-08 07.15 (no title).ics":
            (dav.cal + "untitled.ics", ical("BEGIN:VEVENT\nUID:untitled\n"
                                             "DTSTART:20260108T071500Z\n"
                                             "DTSTAMP:20260101T000000Z\nEND:VEVENT")),
    }
    for rel, (path, data) in spec.items():
        dav.put(path, data)
    return {rel: path for rel, (path, data) in spec.items()}, team, work, friends


def expected_dirs(dav):
    """Every directory of populate()'s tree: Xandikos ignores the component
    set of MKCALENDAR, so its calendars hold all three kinds."""
    d = {"Calendar", "Tasks", "Notes", "Contacts", "Conflicts", "Calendar/Team Café ☕",
         "Calendar/Work", "Tasks/Work", "Contacts/Freunde – Ünïcode"}
    if dav.kind == "xandikos":
        d |= {"Tasks/Team Café ☕", "Notes/Team Café ☕", "Notes/Work"}
    return d


def tree(root):
    """(set of directories, {file: bytes}) below root."""
    dirs, out = set(), {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            dirs.add(os.path.relpath(os.path.join(dirpath, d), root))
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = read(p)
    return dirs, out


def test_initial_sync_names_and_bytes(dav, mount, run_mailfs):
    where, team, work, friends = populate(dav)
    m = dav.mount(mount, run_mailfs)
    dirs, got = tree(m.path)
    assert dirs == expected_dirs(dav), "directories: %s" % sorted(dirs)
    assert set(got) == set(where), \
        "files: missing %s, unexpected %s" % (sorted(set(where) - set(got)),
                                              sorted(set(got) - set(where)))
    for rel, path in where.items():
        server = dav.get(path)
        if rel.endswith(".txt"):
            # a note's file is its DESCRIPTION with LF line ends
            assert got[rel].decode() == NOTE_TEXT, rel
            continue
        # exactly the server's bytes (Xandikos re-serialises: GET is the truth)
        assert got[rel] == server, "%s differs from GET %s" % (rel, path)
        assert os.stat(m / rel).st_size == len(server), rel
    for rel in where:
        assert state(m / rel) == "synced", rel
        st = os.stat(m / rel)
        assert st.st_mode & 0o777 == 0o600, rel
    # the recurring event stays one file holding all three components
    rec = got["Calendar/2026-01-05 09.00 Weekly sync.ics"]
    assert rec.count(b"BEGIN:VEVENT") == 3, rec
    assert sorted(prop(rec, "RECURRENCE-ID")) == ["20260112T090000Z", "20260119T090000Z"]
    for d in dirs:
        assert os.stat(m / d).st_mode & 0o777 == 0o700, d

    # the same names and bytes after a remount and a sync with nothing new
    ino = {rel: os.stat(m / rel).st_ino for rel in where}
    m.unmount()
    m = dav.mount(mount, run_mailfs)
    dirs2, got2 = tree(m.path)
    assert (dirs2, got2) == (dirs, got)
    assert {rel: os.stat(m / rel).st_ino for rel in where} == ino


def test_same_names_get_variants(dav, mount, run_mailfs):
    """Two events with the same start and title, two contacts of one name:
    the names stay unique (" (2)") and stable across a remount. A title too
    long for a name is cut to 255 bytes of valid UTF-8."""
    dav.put(dav.cal + "s1.ics", event("s1", "Standup"))
    dav.put(dav.cal + "s2.ics", event("s2", "Standup"))
    dav.put(dav.cal + "long.ics", todo("long", "Überlänge " + "ü" * 300))
    dav.put(dav.book + "k1.vcf", vcard("k1", "Kim Lee"))
    dav.put(dav.book + "k2.vcf", vcard("k2", "Kim Lee"))
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar") == ["2026-01-05 10.00 Standup (2).ics",
                                     "2026-01-05 10.00 Standup.ics"]
    assert files(m / "Contacts") == ["Kim Lee (2).vcf", "Kim Lee.vcf"]
    [long_name] = files(m / "Tasks")
    raw = long_name.encode("utf-8", "surrogateescape")
    assert len(raw) <= 255 and long_name.startswith("Überlänge üü") and \
        long_name.endswith(".ics"), long_name
    raw.decode("utf-8")
    uid_of = {n: prop(read(m / "Calendar" / n), "UID") for n in files(m / "Calendar")}
    assert sorted(sum(uid_of.values(), [])) == ["s1", "s2"]
    m.unmount()
    m = dav.mount(mount, run_mailfs)
    assert {n: prop(read(m / "Calendar" / n), "UID") for n in files(m / "Calendar")} == uid_of


def test_default_collection_is_kept(dav, mount, run_mailfs):
    """The default is chosen once and stored: a collection that sorts before
    it, made later, does not take its place."""
    dav.put(dav.cal + "a.ics", event("a", "In the default"))
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar") == ["2026-01-05 10.00 In the default.ics"]
    first = dav.calendar("aaa", "Aardvark")      # sorts before the default by href
    dav.put(first + "b.ics", event("b", "In Aardvark"))
    sync(run_mailfs, m)
    assert files(m / "Calendar") == ["2026-01-05 10.00 In the default.ics"]
    assert files(m / "Calendar/Aardvark") == ["2026-01-05 10.00 In Aardvark.ics"]
    m.unmount()
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar") == ["2026-01-05 10.00 In the default.ics"]
    assert files(m / "Calendar/Aardvark") == ["2026-01-05 10.00 In Aardvark.ics"]


def test_single_collection_url(dav, mount, run_mailfs):
    """caldav = a collection's URL syncs that collection alone."""
    team = dav.calendar("team", "Team")
    dav.put(dav.cal + "a.ics", event("a", "Default only"))
    dav.put(team + "b.ics", event("b", "Team only"))
    dav.configure(caldav=dav.url.rstrip("/") + team, carddav=False)
    m = dav.mount(mount, run_mailfs)
    cal = [p for p in glob.glob(str(m / "Calendar") + "/**", recursive=True)
           if os.path.isfile(p)]
    assert [os.path.relpath(p, m.path) for p in cal] == \
        ["Calendar/2026-01-05 10.00 Team only.ics"]
    assert not (m / "Contacts").exists() or not os.listdir(m / "Contacts")


# --- 2. changes on the server ------------------------------------------------------------------

def test_server_side_create_edit_delete(dav, mount, run_mailfs):
    dav.put(dav.cal + "ev.ics", event("ev", "Review", extra="LOCATION:Room 1"))
    dav.put(dav.cal + "td.ics", todo("td", "Buy bread", "20260201"))
    dav.put(dav.cal + "nt.ics", journal("nt", "Packliste", "Zelt\nSchlafsack\n",
                                        "X-MAILFS-TEST:keep"))
    dav.put(dav.book + "ct.vcf", vcard("ct", "Anna Beispiel", "TEL:+49 1"))
    dav.put(dav.cal + "gone-ev.ics", event("gone-ev", "Cancelled", "20260110T080000Z"))
    dav.put(dav.cal + "gone-td.ics", todo("gone-td", "Obsolete"))
    dav.put(dav.cal + "gone-nt.ics", journal("gone-nt", "Old note", "old\n"))
    dav.put(dav.book + "gone-ct.vcf", vcard("gone-ct", "Ex Kontakt"))
    m = dav.mount(mount, run_mailfs)
    ev, td = m / "Calendar/2026-01-05 10.00 Review.ics", m / "Tasks/2026-02-01 Buy bread.ics"
    nt, ct = m / "Notes/Packliste.txt", m / "Contacts/Anna Beispiel.vcf"
    for p in (ev, td, nt, ct, m / "Calendar/2026-01-10 08.00 Cancelled.ics",
              m / "Tasks/Obsolete.ics", m / "Notes/Old note.txt", m / "Contacts/Ex Kontakt.vcf"):
        assert p.exists(), "%s missing after the first sync: %s" % (p, listing(p.parent))

    # create one of each
    dav.put(dav.cal + "new-ev.ics", event("new-ev", "Neu: Termin", "20260120T150000Z"))
    dav.put(dav.cal + "new-td.ics", todo("new-td", "Neue Aufgabe", "20260121"))
    dav.put(dav.cal + "new-nt.ics", journal("new-nt", "Neue Notiz", "Hallo\nWelt\n"))
    dav.put(dav.book + "new-ct.vcf", vcard("new-ct", "Neu Kontakt"))
    # edit one of each (same title: the file keeps its name)
    dav.put(dav.cal + "ev.ics", event("ev", "Review", extra="LOCATION:Room 2"))
    dav.put(dav.cal + "td.ics", todo("td", "Buy bread", "20260201", "STATUS:COMPLETED"))
    dav.put(dav.cal + "nt.ics", journal("nt", "Packliste", "Zelt\nSchlafsack\nKocher\n",
                                        "X-MAILFS-TEST:keep"))
    dav.put(dav.book + "ct.vcf", vcard("ct", "Anna Beispiel", "TEL:+49 2"))
    # delete one of each
    for p in ("gone-ev.ics", "gone-td.ics", "gone-nt.ics"):
        dav.delete(dav.cal + p)
    dav.delete(dav.book + "gone-ct.vcf")

    sync(run_mailfs, m)
    assert files(m / "Calendar") == ["2026-01-05 10.00 Review.ics",
                                     "2026-01-20 15.00 Neu: Termin.ics"]
    assert files(m / "Tasks") == ["2026-01-21 Neue Aufgabe.ics", "2026-02-01 Buy bread.ics"]
    assert files(m / "Notes") == ["Neue Notiz.txt", "Packliste.txt"]
    assert files(m / "Contacts") == ["Anna Beispiel.vcf", "Neu Kontakt.vcf"]
    assert read(ev) == dav.get(dav.cal + "ev.ics") and b"Room 2" in read(ev)
    assert read(td) == dav.get(dav.cal + "td.ics") and b"COMPLETED" in read(td)
    assert read(nt) == b"Zelt\nSchlafsack\nKocher\n"
    assert read(ct) == dav.get(dav.book + "ct.vcf") and b"+49 2" in read(ct)
    assert read(m / "Calendar/2026-01-20 15.00 Neu: Termin.ics") == \
        dav.get(dav.cal + "new-ev.ics")
    assert read(m / "Notes/Neue Notiz.txt") == b"Hallo\nWelt\n"
    assert read(m / "Contacts/Neu Kontakt.vcf") == dav.get(dav.book + "new-ct.vcf")

    # a new title on the server renames a note (its name is its title)
    dav.put(dav.cal + "nt.ics", journal("nt", "Packliste Sommer", "Zelt\n"))
    sync(run_mailfs, m)
    assert files(m / "Notes") == ["Neue Notiz.txt", "Packliste Sommer.txt"]


def test_server_items_not_valid(dav, mount, run_mailfs):
    """Items a server accepts but that are no event, task, note or contact
    show as files with state "error: ..." and the server's bytes."""
    freebusy = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VFREEBUSY\r\nUID:fb\r\n"
                b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\n"
                b"DTEND:20260102T000000Z\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n")
    badcard = (b"BEGIN:VCARD\r\nVERSION:5.0\r\nUID:badver\r\nFN:Bad Version\r\n"
               b"END:VCARD\r\n")
    dav.put(dav.cal + "fb.ics", freebusy)
    dav.put(dav.book + "badver.vcf", badcard)
    dav.put(dav.cal + "ok.ics", event("ok", "Fine"))
    m = dav.mount(mount, run_mailfs)
    found = {}
    for top in ("Calendar", "Tasks", "Notes", "Contacts"):
        for n in files(m / top):
            found[top + "/" + n] = state(m / top / n)
    errors = {k: v for k, v in found.items() if v.startswith("error: ")}
    assert found.get("Calendar/2026-01-05 10.00 Fine.ics") == "synced", found
    assert len(errors) == 2, "want two items in state error, got %s" % found
    ics = [k for k in errors if k.endswith(".ics")]
    vcf = [k for k in errors if k.endswith(".vcf")]
    assert len(ics) == 1 and len(vcf) == 1, errors
    assert read(m / ics[0]) == dav.get(dav.cal + "fb.ics")
    assert read(m / vcf[0]) == dav.get(dav.book + "badver.vcf")

    # fixed on the server: a valid item at the next sync
    dav.put(dav.book + "badver.vcf", vcard("badver", "Fixed There"))
    sync(run_mailfs, m)
    book = {n: state(m / "Contacts" / n) for n in files(m / "Contacts")}
    assert list(book.values()) == ["synced"], book
    assert read(m / "Contacts" / list(book)[0]) == dav.get(dav.book + "badver.vcf")
    # fixed here: the user's version goes to the server (If-Match on its ETag)
    p = m / "Contacts" / list(book)[0]
    dav.put(dav.book + "bad2.vcf", badcard.replace(b"UID:badver", b"UID:bad2"))
    sync(run_mailfs, m)
    [bad2] = [n for n in files(m / "Contacts") if state(m / "Contacts" / n).startswith("error")]
    write(m / "Contacts" / bad2, vcard("bad2", "Fixed Here"))
    wait_state(m, m / "Contacts" / bad2, "synced")
    assert prop(dav.get(dav.book + "bad2.vcf"), "FN") == ["Fixed Here"]
    assert read(m / "Contacts" / bad2) == dav.get(dav.book + "bad2.vcf")
    assert sorted(dav.items(dav.book)) == ["bad2.vcf", "badver.vcf"]
    assert read(p) == dav.get(dav.book + "badver.vcf")


# --- 8. a sync token the server no longer accepts ----------------------------------------------

def forget_tokens(dav):
    """Make the server reject the sync token mailfs holds. Radicale: remove
    its cache of sync tokens. Xandikos: a token is a git commit; a rewritten
    branch whose old commits are pruned leaves the old one unknown (500)."""
    if dav.kind == "radicale":
        for col in (dav.cal, dav.book):
            d = os.path.join(dav.server.collection_dir(col), ".Radicale.cache", "sync-token")
            assert os.path.isdir(d), d
            shutil.rmtree(d)
    else:
        for col in (dav.cal, dav.book):
            d = dav.server.collection_dir(col)
            # a new root commit with the same tree: every old token is unknown
            tree = subprocess.run(["git", "-C", d, "rev-parse", "HEAD^{tree}"], check=True,
                                  capture_output=True, text=True).stdout.strip()
            new = subprocess.run(["git", "-C", d, "commit-tree", tree, "-m", "rewritten"],
                                 check=True, capture_output=True, text=True,
                                 env=dict(os.environ, GIT_AUTHOR_NAME="t",
                                          GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                                          GIT_COMMITTER_EMAIL="t@t")).stdout.strip()
            ref = subprocess.run(["git", "-C", d, "symbolic-ref", "HEAD"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            subprocess.run(["git", "-C", d, "update-ref", ref, new], check=True)
            subprocess.run(["git", "-C", d, "reflog", "expire", "--expire=now", "--all"],
                           check=True)
            subprocess.run(["git", "-C", d, "gc", "-q", "--prune=now"], check=True)


def sync_report_status(dav, collection, token):
    body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
            '<D:sync-token>%s</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>' % token)
    st, _, _ = dav.client().request("REPORT", collection, body, {"Depth": "1"})
    return st


def test_rejected_sync_token_converges(dav, mount, run_mailfs):
    dav.put(dav.cal + "a.ics", event("a", "Alpha"))
    dav.put(dav.cal + "b.ics", event("b", "Beta", "20260106T100000Z"))
    dav.put(dav.book + "c.vcf", vcard("c", "Carla Kontakt"))
    m = dav.mount(mount, run_mailfs)
    old_cal = dav.client().sync_token(dav.cal)
    assert len(files(m / "Calendar")) == 2

    # local changes wait (offline) while the server changes and forgets tokens
    rc, out, err = run_mailfs("offline", m.path)
    assert rc == 0, err
    write(m / "Calendar/local.ics", event("local-1", "Local while offline", "20260107T100000Z"))
    write(m / "Contacts/Local Person.vcf", vcard("local-2", "Local Person"))
    dav.put(dav.cal + "c.ics", event("c", "Gamma", "20260108T100000Z"))
    dav.delete(dav.cal + "b.ics")
    dav.put(dav.book + "d.vcf", vcard("d", "Dora Kontakt"))
    forget_tokens(dav)
    st = sync_report_status(dav, dav.cal, old_cal)
    assert st >= 400, "the server still accepts the old token (%d): the test proves nothing" % st

    rc, out, err = run_mailfs("online", m.path)
    assert rc == 0, err
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert files(m / "Calendar") == ["2026-01-05 10.00 Alpha.ics", "2026-01-08 10.00 Gamma.ics",
                                     "local.ics"], log_tail(m)
    assert files(m / "Contacts") == ["Carla Kontakt.vcf", "Dora Kontakt.vcf",
                                     "Local Person.vcf"], log_tail(m)
    cal = dav.by_uid(dav.cal)
    assert set(cal) == {"a", "c", "local-1"}, "server calendar: %s" % sorted(cal, key=str)
    book = dav.by_uid(dav.book)
    assert set(book) == {"c", "d", "local-2"}, "server book: %s" % sorted(book, key=str)
    wait_state(m, m / "Calendar/local.ics", "synced")
    assert read(m / "Calendar/local.ics") == cal["local-1"][1]


# --- folder attributes (DESIGN section 4) -------------------------------------------------------

def test_folder_attributes(dav, mount, run_mailfs):
    """user.sync.pending counts local changes waiting (offline), user.sync.last
    is the time of the last completed sync (it advances with every pass),
    user.sync.state of a folder at rest is idle."""
    dav.calendar("team", "Team")
    dav.put(dav.cal + "a.ics", event("a", "Alpha"))
    m = dav.mount(mount, run_mailfs)
    dirs = ("Calendar", "Calendar/Team", "Contacts")
    for d in dirs:
        assert xattr(m / d, "user.sync.state") == "idle", d
        assert xattr(m / d, "user.sync.pending") == "0", d
    rc, out, err = run_mailfs("offline", m.path)
    assert rc == 0, err
    write(m / "Calendar/x.ics", event("x", "X"))
    write(m / "Calendar/Team/y.ics", event("y", "Y"))
    write(m / "Calendar/Team/z.ics", event("z", "Z"))
    assert xattr(m / "Calendar", "user.sync.pending") == "1"
    assert xattr(m / "Calendar/Team", "user.sync.pending") == "2"
    rc, out, err = run_mailfs("online", m.path)
    assert rc == 0, err
    wait_for(m, lambda: xattr(m / "Calendar", "user.sync.pending") == "0" and
             xattr(m / "Calendar/Team", "user.sync.pending") == "0", "nothing pending")
    time.sleep(1.1)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    sync(run_mailfs, m)
    last = {}
    for d in dirs:
        v = xattr(m / d, "user.sync.last")
        last[d] = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    stale = {d: t.isoformat() for d, t in last.items() if t < before}
    assert not stale, \
        "BUG: user.sync.last did not advance with `mailfs sync` (pass started %s): %s; a " \
        "collection whose sync token is unchanged is skipped (sync/dav_sync.c " \
        "op_maybe_changed) and last_sync is only written by store_token after a real " \
        "sync, so a quiet collection shows its last change, not its last sync" % (
            before.isoformat(), stale)


# --- hrefs that need percent-encoding (DESIGN section 9) ---------------------------------------

def test_non_ascii_and_space_hrefs(dav, mount, run_mailfs):
    """Collections and items whose hrefs hold spaces and non-ASCII: synced,
    edited, deleted and changed on the server through the right resources
    (servers encode hrefs differently: compare after percent-decoding)."""
    cal = dav.calendar("kalender ü & co", "Kalender Ü")
    book = dav.addressbook("bücher", "Bücher")
    dav.put(cal + "termin ä 1.ics", event("t1", "Termin eins"))
    dav.put(cal + "termin ä 2.ics", event("t2", "Termin zwei", "20260106T100000Z"))
    dav.put(cal + "termin+3 (x).ics", event("t3", "Termin drei", "20260107T100000Z"))
    dav.put(book + "jörg müller.vcf", vcard("k1", "Jörg Müller"))
    m = dav.mount(mount, run_mailfs)
    d = m / "Calendar/Kalender Ü"
    assert files(d) == ["2026-01-05 10.00 Termin eins.ics", "2026-01-06 10.00 Termin zwei.ics",
                        "2026-01-07 10.00 Termin drei.ics"]
    assert files(m / "Contacts/Bücher") == ["Jörg Müller.vcf"]
    for n, href in (("2026-01-05 10.00 Termin eins.ics", "termin ä 1.ics"),
                    ("2026-01-07 10.00 Termin drei.ics", "termin+3 (x).ics")):
        assert read(d / n) == dav.get(cal + href)
    # edit, delete here; change and delete there
    write(d / "2026-01-05 10.00 Termin eins.ics", event("t1", "Termin eins", extra="LOCATION:L"))
    os.unlink(d / "2026-01-06 10.00 Termin zwei.ics")
    p = m / "Contacts/Bücher/Jörg Müller.vcf"
    write(p, read(p).replace(b"END:VCARD", b"TEL:+49 5\r\nEND:VCARD"))
    wait_for(m, lambda: prop(dav.get(cal + "termin ä 1.ics"), "LOCATION") == ["L"] and
             not dav.exists(cal + "termin ä 2.ics") and
             prop(dav.get(book + "jörg müller.vcf"), "TEL") == ["+49 5"],
             "edit and delete through the percent-encoded hrefs")
    assert sorted(dav.items(cal)) == ["termin ä 1.ics", "termin+3 (x).ics"]
    assert sorted(dav.items(book)) == ["jörg müller.vcf"]
    dav.put(cal + "termin+3 (x).ics", event("t3", "Termin drei", "20260107T100000Z",
                                            "LOCATION:S"))
    sync(run_mailfs, m)
    assert prop(read(d / "2026-01-07 10.00 Termin drei.ics"), "LOCATION") == ["S"]
    dav.delete(cal + "termin+3 (x).ics")
    sync(run_mailfs, m)
    assert files(d) == ["2026-01-05 10.00 Termin eins.ics"]
    assert state(d / "2026-01-05 10.00 Termin eins.ics") == "synced"
    assert read(d / "2026-01-05 10.00 Termin eins.ics") == dav.get(cal + "termin ä 1.ics")


def test_no_change_sync_lists_each_home_once(dav, mount, run_mailfs):
    """The CalDAV and the CardDAV driver share one listing of a home both
    name (Radicale keeps calendars and address books in /user/), and what
    discovery found is used again: a sync with no change lists each home
    once and asks nothing else, and both trees stay whole."""
    import re
    import sys
    import urllib.parse
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tools"))
    from faultproxy import FaultProxy
    dav.put(dav.cal + "e1.ics", event("e1", "Kept"))
    dav.put(dav.book + "c1.vcf", vcard("c1", "Anna Kept"))
    u = urllib.parse.urlsplit(dav.url)
    p = FaultProxy(u.hostname, u.port, record=True)
    try:
        url = "%s://127.0.0.1:%d%s" % (u.scheme, p.port, u.path or "/")
        dav.configure(caldav=url, carddav=url)
        m = dav.mount(mount, run_mailfs)
        sync(run_mailfs, m)
        mark = p.mark()
        sync(run_mailfs, m)
        sent = b"".join(p.since(mark))
        homes = {dav.cal_home, dav.book_home}
        listed, others = {}, []
        for req in re.split(rb"(?=^[A-Z]+ /)", sent, flags=re.M):
            head = req.split(b"\r\n\r\n", 1)[0]
            first = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(first) < 2:
                continue
            path = urllib.parse.unquote(first[1])
            if first[0] == "PROPFIND" and path in homes and \
                    re.search(rb"^Depth: *1\r?$", head, re.M | re.I):
                listed[path] = listed.get(path, 0) + 1
            else:
                others.append(" ".join(first[:2]))
        assert listed == {h: 1 for h in homes}, listed
        # what the first discovery found is used again: no probes
        assert others == [], others
        assert files(m / "Calendar") == ["2026-01-05 10.00 Kept.ics"]
        assert files(m / "Contacts") == ["Anna Kept.vcf"]
        m.unmount()
    finally:
        p.close()


def test_remembered_home_gone_discovers_again(dav, mount, run_mailfs):
    """What discovery found is kept in the store; when a remembered home no
    longer answers (moved, here: made up), the next sync discovers again and
    keeps the real one."""
    import sqlite3
    dav.put(dav.cal + "e1.ics", event("e1", "Kept"))
    m = dav.mount(mount, run_mailfs)
    sync(run_mailfs, m)
    m.unmount()
    db = sqlite3.connect(os.path.join(dav.store_dir(), "store.db"))
    (kept,) = db.execute("SELECT value FROM meta WHERE key = 'dav.caldav.where'").fetchone()
    assert kept.split("\n")[5:] == [dav.cal_home], kept
    moved = kept.split("\n")[:5] + ["/nobody/here/"]
    db.execute("UPDATE meta SET value = ? WHERE key = 'dav.caldav.where'", ("\n".join(moved),))
    db.commit()
    db.close()
    dav.put(dav.cal + "e2.ics", event("e2", "New", "20260106T100000Z"))
    m = dav.mount(mount, run_mailfs)
    sync(run_mailfs, m)
    assert files(m / "Calendar") == ["2026-01-05 10.00 Kept.ics", "2026-01-06 10.00 New.ics"]
    assert "discovering again" in m.stderr()
    m.unmount()
    db = sqlite3.connect(os.path.join(dav.store_dir(), "store.db"))
    (kept,) = db.execute("SELECT value FROM meta WHERE key = 'dav.caldav.where'").fetchone()
    db.close()
    assert kept.split("\n")[5:] == [dav.cal_home], kept
