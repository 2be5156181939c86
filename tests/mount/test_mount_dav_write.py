"""Local changes of events, tasks, notes and contacts reaching a CalDAV/
CardDAV server (DESIGN section 3): create (PUT If-None-Match at
<collection>/<UID>.ics, a UID added when missing, the item read back),
edit (PUT If-Match, also an editor's save by rename), rm (DELETE), mv
between collections of a kind (MOVE, or PUT + DELETE on Xandikos), notes as
text files (title = SUMMARY, text = DESCRIPTION, other properties kept);
collections (mkdir, rmdir, rename); the refusals (EXDEV across kinds, no
nesting, top directories fixed, no mail flags); files that are not valid
iCalendar or vCard (kept locally with state "error: ...", sent once fixed).
Every result is checked on the server with DavClient."""

import errno
import os

from dav_env import (PUSH, dav, dav_server, errno_of, event, files, ical_text,  # noqa: F401
                     journal, listing, log_tail, mailfs_cmd, prop, read, run, state, sync,
                     todo, unfold, vcard, wait_for, wait_state, write)
from mailfs_testlib import crlf, xattr


def server_has(dav, collection, uid):
    return uid in dav.by_uid(collection)


def wait_uid(m, dav, collection, uid, present=True, what=None):
    """Wait until the server collection holds (or no longer holds) an item
    with this UID; returns {UID: (name, bytes)} then."""
    def check():
        items = dav.by_uid(collection)
        return (items,) if (uid in items) == present else None
    return wait_for(m, check, what or "UID %s %s %s on the server"
                    % (uid, "in" if present else "gone from", collection))[0]


def wait_synced(m, path):
    wait_state(m, path, "synced")


# --- 3. create ---------------------------------------------------------------------------

NO_UID = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailfs tests//EN\r\nBEGIN:VEVENT\r\n"
          b"DTSTART:20260301T090000Z\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:No UID here\r\n"
          b"END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_local_create_each_type(dav, mount, run_mailfs, tmp_path):
    m = dav.mount(mount, run_mailfs)
    src = tmp_path / "src"
    src.mkdir()
    ev = event("local-ev-1", "Zahnarzt 🦷", "20260210T143000Z", "LOCATION:Praxis")
    (src / "ev.ics").write_bytes(ev)
    (src / "noid.ics").write_bytes(NO_UID)
    # written with LF line ends, as a text editor would
    td = todo("local-td-1", "Steuererklärung", "20260531").replace(b"\r\n", b"\n")
    ct = vcard("local-ct-1", "Renée Fleming", "EMAIL:renee@example.com")
    run("cp", src / "ev.ics", m / "Calendar/Dentist appointment.ics")
    run("cp", src / "noid.ics", m / "Calendar/no uid.ics")
    write(m / "Tasks/taxes.ics", td)
    run("sh", "-c", 'cat "$1" > "$2"', "sh", "-", m / "Contacts/Renée.vcf",
        input=ct.decode())
    run("sh", "-c", 'printf "Milch\\nEier, Mehl; Zucker\\n" > "$1"', "sh",
        m / "Notes/Einkaufsliste.txt")
    created = ["Calendar/Dentist appointment.ics", "Calendar/no uid.ics", "Tasks/taxes.ics",
               "Contacts/Renée.vcf", "Notes/Einkaufsliste.txt"]
    for rel in created:
        assert state(m / rel) in ("pending", "synced"), (rel, state(m / rel))
    for rel in created:
        wait_synced(m, m / rel)

    cal = dav.by_uid(dav.cal)
    # each new item at <collection>/<UID>.ics
    assert cal["local-ev-1"][0] == "local-ev-1.ics", cal.keys()
    assert cal["local-td-1"][0] == "local-td-1.ics"
    assert prop(cal["local-ev-1"][1], "SUMMARY") == ["Zahnarzt 🦷"]
    assert prop(cal["local-ev-1"][1], "LOCATION") == ["Praxis"]
    assert prop(cal["local-td-1"][1], "SUMMARY") == ["Steuererklärung"]
    # cp of an .ics without UID: the server's copy has one, and so has the file
    added = [u for u, (n, b) in cal.items() if prop(b, "SUMMARY") == ["No UID here"]]
    assert len(added) == 1 and added[0], cal.keys()
    assert cal[added[0]][0] == added[0] + ".ics"
    book = dav.by_uid(dav.book)
    assert book["local-ct-1"][0] == "local-ct-1.vcf", book.keys()
    assert prop(book["local-ct-1"][1], "FN") == ["Renée Fleming"]
    # the note: SUMMARY is the file's name, DESCRIPTION its text
    notes = [(u, b) for u, (n, b) in cal.items() if b"VJOURNAL" in b]
    assert len(notes) == 1, cal.keys()
    nb = notes[0][1]
    assert prop(nb, "SUMMARY", "VJOURNAL") == ["Einkaufsliste"]
    assert [ical_text(v) for v in prop(nb, "DESCRIPTION", "VJOURNAL")] == \
        ["Milch\nEier, Mehl; Zucker\n"], nb
    assert notes[0][0], "the new note has no UID"

    # the files keep the user's names and show what the server holds
    assert files(m / "Calendar") == ["Dentist appointment.ics", "no uid.ics"]
    assert files(m / "Tasks") == ["taxes.ics"]
    assert files(m / "Contacts") == ["Renée.vcf"]
    assert files(m / "Notes") == ["Einkaufsliste.txt"]
    assert read(m / "Calendar/Dentist appointment.ics") == cal["local-ev-1"][1]
    assert read(m / "Calendar/no uid.ics") == cal[added[0]][1]
    assert prop(read(m / "Calendar/no uid.ics"), "UID") == [added[0]]
    assert read(m / "Tasks/taxes.ics") == cal["local-td-1"][1]
    assert read(m / "Contacts/Renée.vcf") == book["local-ct-1"][1]
    assert read(m / "Notes/Einkaufsliste.txt") == b"Milch\nEier, Mehl; Zucker\n"

    # and keep them across a sync and a remount
    sync(run_mailfs, m)
    m.unmount()
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar") == ["Dentist appointment.ics", "no uid.ics"]
    assert files(m / "Contacts") == ["Renée.vcf"]
    assert files(m / "Notes") == ["Einkaufsliste.txt"]
    assert len(dav.by_uid(dav.cal)) == 4 and len(dav.by_uid(dav.book)) == 1


def test_vcard_without_uid_gets_one(dav, mount, run_mailfs):
    m = dav.mount(mount, run_mailfs)
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ohne UID\r\nN:UID;Ohne;;;\r\nEND:VCARD\r\n"
    write(m / "Contacts/Ohne UID.vcf", card)
    wait_synced(m, m / "Contacts/Ohne UID.vcf")
    book = dav.by_uid(dav.book)
    assert len(book) == 1 and None not in book, book
    uid, (name, body) = next(iter(book.items()))
    assert name == uid + ".vcf"
    assert read(m / "Contacts/Ohne UID.vcf") == body


# --- 3. edit -------------------------------------------------------------------------------

def test_local_edit_each_type(dav, mount, run_mailfs):
    dav.put(dav.cal + "ev.ics", event("ev", "Review", extra="LOCATION:Room 1"))
    dav.put(dav.cal + "ev2.ics", event("ev2", "Retro", "20260106T100000Z",
                                       "LOCATION:Room 1"))
    dav.put(dav.cal + "td.ics", todo("td", "Buy bread", "20260201"))
    dav.put(dav.book + "ct.vcf", vcard("ct", "Anna Beispiel", "TEL:+49 1"))
    dav.put(dav.cal + "nt.ics", journal(
        "nt", "Packliste", "Zelt\nSchlafsack\n",
        "X-MAILFS-TEST;X-PARAM=1:keep me\nCATEGORIES:Urlaub\nCLASS:PRIVATE"))
    from test_mount_dav_sync import RECURRING
    dav.put(dav.cal + "rec.ics", RECURRING)
    m = dav.mount(mount, run_mailfs)
    ev, ev2 = m / "Calendar/2026-01-05 10.00 Review.ics", m / "Calendar/2026-01-06 10.00 Retro.ics"
    rec = m / "Calendar/2026-01-05 09.00 Weekly sync.ics"
    td, ct = m / "Tasks/2026-02-01 Buy bread.ics", m / "Contacts/Anna Beispiel.vcf"
    nt = m / "Notes/Packliste.txt"

    write(ev, read(ev).replace(b"Room 1", b"Room 42"))           # plain overwrite
    run("sed", "-i", "s/Room 1/Room 43/", ev2)                     # editor: temp + rename
    run("sh", "-c", 'cat > "$1"', "sh", td,                       # shell redirect
        input=read(td).replace(b"END:VTODO", b"STATUS:COMPLETED\r\nEND:VTODO").decode())
    write(nt, "Zelt\nSchlafsack\nKocher, Gas; Töpfe\n")
    # vim's own save, backupcopy=no: the original renamed to a backup, a new file written
    run("vim", "-u", "NONE", "-i", "NONE", "-N", "-es",
        "-c", "set backupcopy=no writebackup nobackup", "-c", "%s/+49 1/+49 99/", "-c", "wq",
        ct, env=dict(os.environ, HOME=str(m.path) + "-vimhome"))
    # one override of a recurring event: the file stays one item of three components
    run("sed", "-i", "s/SUMMARY:Weekly sync (moved)/SUMMARY:Weekly sync (moved again)/", rec)
    for p in (ev, ev2, td, ct, nt, rec):
        wait_synced(m, p)

    rb = dav.get(dav.cal + "rec.ics")
    assert rb.count(b"BEGIN:VEVENT") == 3, rb
    assert sorted(prop(rb, "SUMMARY")) == ["Weekly sync", "Weekly sync (long)",
                                           "Weekly sync (moved again)"], rb
    assert sorted(prop(rb, "RECURRENCE-ID")) == ["20260112T090000Z", "20260119T090000Z"]
    assert read(rec) == rb
    cal = dav.by_uid(dav.cal)
    assert prop(cal["ev"][1], "LOCATION") == ["Room 42"]
    assert prop(cal["ev2"][1], "LOCATION") == ["Room 43"]
    assert prop(cal["td"][1], "STATUS") == ["COMPLETED"]
    assert prop(dav.get(dav.book + "ct.vcf"), "TEL") == ["+49 99"]
    # edits replace the same resources: nothing new, nothing deleted
    assert sorted(n for n, b in cal.values()) == ["ev.ics", "ev2.ics", "nt.ics", "rec.ics",
                                                  "td.ics"]
    assert list(dav.items(dav.book)) == ["ct.vcf"]
    # the note: new DESCRIPTION, every other property kept
    nb = cal["nt"][1]
    assert [ical_text(v) for v in prop(nb, "DESCRIPTION")] == ["Zelt\nSchlafsack\nKocher, Gas; Töpfe\n"]
    assert prop(nb, "SUMMARY") == ["Packliste"]
    assert prop(nb, "X-MAILFS-TEST") == ["keep me"], nb
    assert any("X-PARAM=1" in x for x in unfold(nb)), nb
    assert prop(nb, "CATEGORIES") == ["Urlaub"] and prop(nb, "CLASS") == ["PRIVATE"], nb
    assert prop(nb, "DTSTART") == ["20260105"], nb
    # the files show what the server holds, under the same names
    assert read(ev) == dav.get(dav.cal + "ev.ics")
    assert read(ev2) == dav.get(dav.cal + "ev2.ics")
    assert read(td) == dav.get(dav.cal + "td.ics")
    assert read(ct) == dav.get(dav.book + "ct.vcf")
    assert read(nt) == "Zelt\nSchlafsack\nKocher, Gas; Töpfe\n".encode()
    assert files(m / "Calendar") == ["2026-01-05 09.00 Weekly sync.ics",
                                     "2026-01-05 10.00 Review.ics",
                                     "2026-01-06 10.00 Retro.ics"]


def test_note_text_keeps_lf(dav, mount, run_mailfs):
    """A note is a text file with LF line ends: what the user wrote reads
    back the same while it waits (offline) and after it is sent."""
    m = dav.mount(mount, run_mailfs)
    mailfs_cmd(run_mailfs, "offline", m.path)
    write(m / "Notes/Zeilen.txt", "eins\nzwei\n")
    assert state(m / "Notes/Zeilen.txt") == "pending"
    waiting = read(m / "Notes/Zeilen.txt")
    mailfs_cmd(run_mailfs, "online", m.path)
    wait_synced(m, m / "Notes/Zeilen.txt")
    assert read(m / "Notes/Zeilen.txt") == b"eins\nzwei\n"
    nb = [b for n, b in dav.items(dav.cal).items()]
    assert len(nb) == 1 and [ical_text(v) for v in prop(nb[0], "DESCRIPTION")] == \
        ["eins\nzwei\n"], nb
    assert waiting == b"eins\nzwei\n", \
        "BUG: a note waiting to be sent reads %r: its LF line ends were rewritten as CRLF " \
        "(fs/write.c draft_commit -> normalize_crlf, meant for mail, runs for notes)" % waiting


# --- 3. delete --------------------------------------------------------------------------------

def test_local_delete_each_type(dav, mount, run_mailfs):
    dav.put(dav.cal + "ev.ics", event("ev", "Review"))
    dav.put(dav.cal + "td.ics", todo("td", "Buy bread"))
    dav.put(dav.cal + "nt.ics", journal("nt", "Packliste", "Zelt\n"))
    dav.put(dav.book + "ct.vcf", vcard("ct", "Anna Beispiel"))
    dav.put(dav.cal + "keep.ics", event("keep", "Keep me", "20260107T100000Z"))
    m = dav.mount(mount, run_mailfs)
    for rel in ("Calendar/2026-01-05 10.00 Review.ics", "Tasks/Buy bread.ics",
                "Notes/Packliste.txt", "Contacts/Anna Beispiel.vcf"):
        os.unlink(m / rel)
    wait_for(m, lambda: set(dav.by_uid(dav.cal)) == {"keep"},
             "ev, td, nt deleted on the server (now %s)" % sorted(dav.by_uid(dav.cal)))
    wait_for(m, lambda: dav.by_uid(dav.book) == {}, "ct deleted on the server")
    sync(run_mailfs, m)
    assert files(m / "Calendar") == ["2026-01-07 10.00 Keep me.ics"]
    assert files(m / "Tasks") == files(m / "Notes") == files(m / "Contacts") == []


# --- 3. mv between collections, renames of notes ----------------------------------------------

def test_mv_between_collections(dav, mount, run_mailfs):
    team = dav.calendar("team", "Team")
    work = dav.calendar("work", "Work")
    friends = dav.addressbook("friends", "Friends")
    dav.put(dav.cal + "ev.ics", event("ev", "Offsite", extra="LOCATION:Berg"))
    dav.put(dav.cal + "td.ics", todo("td", "Book bus", "20260301"))
    dav.put(dav.book + "ct.vcf", vcard("ct", "Anna Beispiel"))
    dav.put(work + "back.ics", event("back", "Back home", "20260302T100000Z"))
    m = dav.mount(mount, run_mailfs)
    ev_before = dav.get(dav.cal + "ev.ics")

    run("mv", m / "Calendar/2026-01-05 10.00 Offsite.ics", m / "Calendar/Team/")
    run("mv", m / "Tasks/2026-03-01 Book bus.ics", m / "Tasks/Work/")
    run("mv", m / "Contacts/Anna Beispiel.vcf", m / "Contacts/Friends/")
    run("mv", m / "Calendar/Work/2026-03-02 10.00 Back home.ics", m / "Calendar/")
    for uid, frm, to in (("ev", dav.cal, team), ("td", dav.cal, work), ("ct", dav.book, friends),
                         ("back", work, dav.cal)):
        wait_for(m, lambda: uid in dav.by_uid(to) and uid not in dav.by_uid(frm),
                 "%s moved from %s to %s (server: %s / %s)"
                 % (uid, frm, to, sorted(dav.by_uid(frm)), sorted(dav.by_uid(to))))
    assert prop(dav.by_uid(team)["ev"][1], "LOCATION") == ["Berg"]
    if dav.has_move:
        assert dav.get(team + "ev.ics") == ev_before  # MOVE keeps the bytes
    sync(run_mailfs, m)
    assert files(m / "Calendar/Team") == ["2026-01-05 10.00 Offsite.ics"]
    assert files(m / "Tasks/Work") == ["2026-03-01 Book bus.ics"]
    assert files(m / "Contacts/Friends") == ["Anna Beispiel.vcf"]
    assert files(m / "Calendar") == ["2026-03-02 10.00 Back home.ics"]
    assert files(m / "Tasks") == [] and files(m / "Contacts") == []
    for rel in ("Calendar/Team/2026-01-05 10.00 Offsite.ics", "Tasks/Work/2026-03-01 Book bus.ics",
                "Contacts/Friends/Anna Beispiel.vcf", "Calendar/2026-03-02 10.00 Back home.ics"):
        wait_synced(m, m / rel)
    assert read(m / "Calendar/Team/2026-01-05 10.00 Offsite.ics") == dav.by_uid(team)["ev"][1]
    assert read(m / "Contacts/Friends/Anna Beispiel.vcf") == dav.by_uid(friends)["ct"][1]
    # one copy each, nothing left behind
    assert len(dav.items(dav.cal)) == 1 and len(dav.items(team)) == 1
    assert len(dav.items(work)) == 1 and dav.items(dav.book) == {}


def test_mv_note_to_another_collection_with_new_title(dav, mount, run_mailfs):
    """mv Notes/A.txt Notes/Team/B.txt: the note moves and its SUMMARY is B."""
    team = dav.calendar("team", "Team")
    dav.put(dav.cal + "nt.ics", journal("nt", "Alpha", "Text\n", "X-MAILFS-TEST:keep"))
    m = dav.mount(mount, run_mailfs)
    os.rename(m / "Notes/Alpha.txt", m / "Notes/Team/Beta.txt")
    wait_for(m, lambda: "nt" in dav.by_uid(team) and "nt" not in dav.by_uid(dav.cal),
             "the note moved to Team on the server")
    wait_synced(m, m / "Notes/Team/Beta.txt")
    sync(run_mailfs, m)
    summary = prop(dav.by_uid(team)["nt"][1], "SUMMARY")
    assert summary == ["Beta"], \
        "BUG: mv Notes/Alpha.txt Notes/Team/Beta.txt moved the note but its SUMMARY on the " \
        "server is still %s while the file reads Beta.txt, state synced (store/local.c " \
        "dav_rename journals the MOVE and drops the title change: the REPLACE branch is an " \
        "'else if' of the move branch)" % summary
    nb = dav.by_uid(team)["nt"][1]
    assert [ical_text(v) for v in prop(nb, "DESCRIPTION")] == ["Text\n"]
    assert prop(nb, "X-MAILFS-TEST") == ["keep"]
    sync(run_mailfs, m)
    assert files(m / "Notes/Team") == ["Beta.txt"] and files(m / "Notes") == []
    assert read(m / "Notes/Team/Beta.txt") == b"Text\n"


def test_offline_create_edit_rm_coalesce(dav, mount, run_mailfs):
    """Offline: a file made and removed costs the server nothing; a file made
    and edited arrives once, in its last version; an item edited twice is
    sent once with the last text."""
    dav.put(dav.cal + "ev.ics", event("ev", "Twice edited", extra="LOCATION:0"))
    m = dav.mount(mount, run_mailfs)
    ev = m / "Calendar/2026-01-05 10.00 Twice edited.ics"
    mailfs_cmd(run_mailfs, "offline", m.path)
    write(m / "Calendar/gone.ics", event("gone", "Made and removed"))
    os.unlink(m / "Calendar/gone.ics")
    write(m / "Calendar/kept.ics", event("kept", "Made", extra="LOCATION:first"))
    write(m / "Calendar/kept.ics", event("kept", "Made", extra="LOCATION:second"))
    write(ev, read(ev).replace(b"LOCATION:0", b"LOCATION:1"))
    write(ev, read(ev).replace(b"LOCATION:1", b"LOCATION:2"))
    write(m / "Contacts/temp.vcf", vcard("temp", "Temp Person"))
    os.rename(m / "Contacts/temp.vcf", m / "Contacts/renamed.vcf")
    cols = dav.collections(dav.cal_home)
    os.mkdir(m / "Calendar/Temp")
    write(m / "Calendar/Temp/t.ics", event("in-temp", "Made and removed with its dir"))
    os.unlink(m / "Calendar/Temp/t.ics")
    os.rmdir(m / "Calendar/Temp")
    mailfs_cmd(run_mailfs, "online", m.path)
    for p in (m / "Calendar/kept.ics", ev, m / "Contacts/renamed.vcf"):
        wait_synced(m, p)
    sync(run_mailfs, m)
    cal = dav.by_uid(dav.cal)
    assert sorted(cal) == ["ev", "kept"], sorted(cal)
    assert prop(cal["kept"][1], "LOCATION") == ["second"]
    assert prop(cal["ev"][1], "LOCATION") == ["2"]
    assert sorted(dav.by_uid(dav.book)) == ["temp"]
    assert files(m / "Calendar") == ["2026-01-05 10.00 Twice edited.ics", "kept.ics"]
    assert files(m / "Contacts") == ["renamed.vcf"]
    assert dav.collections(dav.cal_home) == cols


def test_local_title_edit_keeps_the_file_name(dav, mount, run_mailfs):
    """Names are stable: an event whose SUMMARY the user changes keeps its
    file name (the server gets the new SUMMARY)."""
    dav.put(dav.cal + "ev.ics", event("ev", "Old title"))
    m = dav.mount(mount, run_mailfs)
    p = m / "Calendar/2026-01-05 10.00 Old title.ics"
    run("sed", "-i", "s/SUMMARY:Old title/SUMMARY:New title/", p)
    wait_for(m, lambda: prop(dav.get(dav.cal + "ev.ics"), "SUMMARY") == ["New title"],
             "the new SUMMARY on the server")
    sync(run_mailfs, m)
    assert files(m / "Calendar") == ["2026-01-05 10.00 Old title.ics"]
    wait_synced(m, p)
    assert read(p) == dav.get(dav.cal + "ev.ics")


def test_collection_deleted_on_the_server(dav, mount, run_mailfs):
    team = dav.calendar("team", "Team")
    dav.put(team + "e.ics", event("e", "In Team"))
    dav.put(dav.cal + "d.ics", event("d", "In the default"))
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar/Team") == ["2026-01-05 10.00 In Team.ics"]
    dav.delete(team)
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert "Team" not in listing(m / "Calendar")
    assert files(m / "Calendar") == ["2026-01-05 10.00 In the default.ics"]
    assert sorted(dav.by_uid(dav.cal)) == ["d"]


def test_rename_note_changes_summary(dav, mount, run_mailfs):
    dav.put(dav.cal + "nt.ics", journal("nt", "Alter Titel", "Text bleibt\n",
                                        "X-MAILFS-TEST:keep"))
    dav.put(dav.cal + "ev.ics", event("ev", "Name stays on the server"))
    m = dav.mount(mount, run_mailfs)
    os.rename(m / "Notes/Alter Titel.txt", m / "Notes/Neuer Titel – ü.txt")
    wait_for(m, lambda: prop(dav.get(dav.cal + "nt.ics"), "SUMMARY") == ["Neuer Titel – ü"],
             "SUMMARY of the note renamed on the server")
    nb = dav.get(dav.cal + "nt.ics")
    assert [ical_text(v) for v in prop(nb, "DESCRIPTION")] == ["Text bleibt\n"]
    assert prop(nb, "X-MAILFS-TEST") == ["keep"]
    assert files(m / "Notes") == ["Neuer Titel – ü.txt"]
    assert read(m / "Notes/Neuer Titel – ü.txt") == b"Text bleibt\n"
    # renaming an event's file inside its folder is a local name only
    before = dav.get(dav.cal + "ev.ics")
    os.rename(m / "Calendar/2026-01-05 10.00 Name stays on the server.ics",
              m / "Calendar/my name.ics")
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert dav.get(dav.cal + "ev.ics") == before
    assert list(dav.by_uid(dav.cal)) and sorted(dav.by_uid(dav.cal)) == ["ev", "nt"]
    assert files(m / "Calendar") == ["my name.ics"]
    assert state(m / "Calendar/my name.ics") == "synced"


# --- 4. collections ------------------------------------------------------------------------------

def test_mkdir_rmdir_rename_collections(dav, mount, run_mailfs):
    m = dav.mount(mount, run_mailfs)
    before = dav.collections(dav.cal_home, "calendar")
    os.mkdir(m / "Calendar/Reisen 2026 ✈")
    os.mkdir(m / "Contacts/Familie")

    def new_cols(home, known):
        return {h: n for h, n in dav.collections(home, "calendar").items() if h not in known}
    wait_for(m, lambda: list(new_cols(dav.cal_home, before).values()) == ["Reisen 2026 ✈"],
             "a new calendar named 'Reisen 2026 ✈'")
    trips = next(iter(new_cols(dav.cal_home, before)))
    wait_for(m, lambda: [h for h, n in dav.collections(dav.book_home, "addressbook").items()
                         if n == "Familie"], "a new address book named Familie")
    fam = [h for h, n in dav.collections(dav.book_home, "addressbook").items()
           if n == "Familie"][0]
    st, rs = dav.client().propfind(trips, 0, ["D:resourcetype",
                                              "C:supported-calendar-component-set"])
    rt = rs[0][1]["{DAV:}resourcetype"]
    assert rt.find("{urn:ietf:params:xml:ns:caldav}calendar") is not None
    st, rs = dav.client().propfind(fam, 0, ["D:resourcetype"])
    assert rs[0][1]["{DAV:}resourcetype"].find(
        "{urn:ietf:params:xml:ns:carddav}addressbook") is not None

    # items made in the new directories land in the new collections
    write(m / "Calendar/Reisen 2026 ✈/flight.ics",
          event("flight-1", "Flug nach Oslo", "20260704T061500Z"))
    write(m / "Contacts/Familie/Oma.vcf", vcard("oma-1", "Oma Erna"))
    wait_uid(m, dav, trips, "flight-1")
    wait_uid(m, dav, fam, "oma-1")

    # a non-empty collection is not removed
    assert errno_of(os.rmdir, m / "Calendar/Reisen 2026 ✈") == errno.ENOTEMPTY
    assert errno_of(os.rmdir, m / "Contacts/Familie") == errno.ENOTEMPTY

    # renaming a collection's directory in place changes its display name
    os.rename(m / "Calendar/Reisen 2026 ✈", m / "Calendar/Urlaub")
    os.rename(m / "Contacts/Familie", m / "Contacts/Verwandte")
    wait_for(m, lambda: dav.displayname(trips) == "Urlaub" and
             dav.displayname(fam) == "Verwandte", "display names Urlaub and Verwandte")
    assert files(m / "Calendar/Urlaub") == ["flight.ics"]
    sync(run_mailfs, m)
    assert "Urlaub" in listing(m / "Calendar") and "Reisen 2026 ✈" not in listing(m / "Calendar")
    assert dav.exists(trips) and server_has(dav, trips, "flight-1")

    # emptied, it goes (DELETE)
    os.unlink(m / "Calendar/Urlaub/flight.ics")
    assert files(m / "Contacts/Verwandte") == ["Oma.vcf"]
    os.unlink(m / "Contacts/Verwandte/Oma.vcf")
    wait_uid(m, dav, trips, "flight-1", present=False)
    wait_uid(m, dav, fam, "oma-1", present=False)
    os.rmdir(m / "Calendar/Urlaub")
    os.rmdir(m / "Contacts/Verwandte")
    wait_for(m, lambda: not dav.exists(trips) and not dav.exists(fam),
             "both collections deleted on the server")
    sync(run_mailfs, m)
    assert "Urlaub" not in listing(m / "Calendar")
    assert listing(m / "Contacts") == []
    assert dav.exists(dav.cal) and dav.exists(dav.book)


def test_collection_refusals(dav, mount, run_mailfs):
    dav.calendar("team", "Team")
    dav.put(dav.cal + "ev.ics", event("ev", "Review"))
    dav.put(dav.book + "ct.vcf", vcard("ct", "Anna Beispiel"))
    m = dav.mount(mount, run_mailfs)
    ev = m / "Calendar/2026-01-05 10.00 Review.ics"
    cols = dav.collections(dav.cal_home)  # calendars and address books
    # collections do not nest
    e = errno_of(os.mkdir, m / "Calendar/Team/Sub")
    assert e is not None, "mkdir Calendar/Team/Sub succeeded"
    assert not os.path.exists(m / "Calendar/Team/Sub")
    # the top directories stay
    for top in ("Calendar", "Tasks", "Notes", "Contacts"):
        assert errno_of(os.rmdir, m / top) in (errno.EPERM, errno.ENOTEMPTY, errno.EACCES), top
        assert errno_of(os.rename, m / top, m / (top + "2")) in (errno.EPERM, errno.EACCES), top
    # across kinds: EXDEV (mv(1) would copy and delete instead)
    assert errno_of(os.rename, ev, m / "Contacts/Review.ics") == errno.EXDEV
    assert errno_of(os.rename, ev, m / "Tasks/Review.ics") == errno.EXDEV
    assert errno_of(os.rename, m / "Contacts/Anna Beispiel.vcf",
                    m / "Calendar/Anna.vcf") == errno.EXDEV
    assert errno_of(os.rename, m / "Calendar/Team", m / "Tasks/Team2") in (errno.EXDEV,
                                                                          errno.EPERM)
    # no mail flags on DAV items
    assert errno_of(os.setxattr, ev, "user.mail.flags", b"seen") == errno.ENOTSUP
    assert errno_of(os.setxattr, m / "Contacts/Anna Beispiel.vcf", "user.mail.flags",
                    b"flagged") == errno.ENOTSUP
    assert b"user.mail.flags" not in run("getfattr", "-d", ev).stdout.encode()
    sync(run_mailfs, m)
    # nothing changed anywhere
    assert dav.collections(dav.cal_home) == cols
    assert list(dav.by_uid(dav.cal)) == ["ev"] and list(dav.by_uid(dav.book)) == ["ct"]
    assert ev.exists() and state(ev) == "synced"


def test_collection_names_follow_the_server(dav, mount, run_mailfs):
    """A further collection's directory is named by its display name: a new
    display name on the server renames it (under every kind it shows in)."""
    work = dav.calendar("work", "Work", comps=("VEVENT", "VTODO"))
    book = dav.addressbook("friends", "Friends")
    dav.put(work + "e.ics", event("e", "Planning"))
    dav.put(work + "t.ics", todo("t", "Minutes"))
    dav.put(book + "c.vcf", vcard("c", "Anna Beispiel"))
    m = dav.mount(mount, run_mailfs)
    assert "Work" in listing(m / "Calendar") and "Work" in listing(m / "Tasks")
    dav.set_displayname(work, "Arbeit")
    dav.set_displayname(book, "Freunde")
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    got = {top: [d for d in listing(m / top) if os.path.isdir(m / top / d)]
           for top in ("Calendar", "Tasks", "Contacts")}
    assert got["Calendar"] == ["Arbeit"] and got["Tasks"] == ["Arbeit"] and \
        got["Contacts"] == ["Freunde"], \
        "BUG: display names changed on the server are not followed (want Arbeit, Arbeit, " \
        "Freunde; got %s): sync/dav_sync.c list_kind() skips a collection whose folder " \
        "exists without comparing its name" % got
    assert files(m / "Calendar/Arbeit") == ["2026-01-05 10.00 Planning.ics"]


def test_rename_collection_of_two_kinds(dav, mount, run_mailfs):
    """mv Calendar/Work Calendar/Job renames the collection (PROPPATCH); its
    tasks' directory is the same collection and follows."""
    work = dav.calendar("work", "Work", comps=("VEVENT", "VTODO"))
    dav.put(work + "e.ics", event("e", "Planning"))
    dav.put(work + "t.ics", todo("t", "Minutes"))
    m = dav.mount(mount, run_mailfs)
    os.rename(m / "Calendar/Work", m / "Calendar/Job")
    wait_for(m, lambda: dav.displayname(work) == "Job", "display name Job on the server")
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert files(m / "Calendar/Job") == ["2026-01-05 10.00 Planning.ics"]
    assert sorted(dav.items(work)) == ["e.ics", "t.ics"]
    tasks = [d for d in listing(m / "Tasks") if os.path.isdir(m / "Tasks" / d)]
    assert tasks == ["Job"], \
        "BUG: the collection is now named Job on the server but its tasks stay under " \
        "Tasks/%s (store/local.c dav_folder_rename renames one folder row; list_kind in " \
        "sync/dav_sync.c never renames existing rows)" % tasks


def test_rmdir_of_two_kind_collection_keeps_the_other_kind(dav, mount, run_mailfs):
    """rmdir Calendar/Work when Work also holds tasks: the collection is not
    empty on the server, so it stays, and Calendar/Work comes back."""
    work = dav.calendar("work", "Work", comps=("VEVENT", "VTODO"))
    dav.put(work + "t.ics", todo("t", "Only a task"))
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar/Work") == []
    os.rmdir(m / "Calendar/Work")
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert dav.exists(work) and sorted(dav.items(work)) == ["t.ics"]
    assert files(m / "Tasks/Work") == ["Only a task.ics"]
    wait_for(m, lambda: os.path.isdir(m / "Calendar/Work"), "Calendar/Work back")


def test_no_mail_folders_without_imap(dav, mount, run_mailfs):
    """An account with only caldav and carddav has no mail: a directory made
    in the root could never reach a server, so mkdir is refused."""
    m = dav.mount(mount, run_mailfs)
    e = errno_of(os.mkdir, m / "Stuff")
    pending = None
    if e is None:
        write(m / "Stuff/x.eml", b"Subject: x\r\n\r\nbody\r\n")
        pending = (xattr(m / "Stuff", "user.sync.state"), state(m / "Stuff/x.eml"))
    assert e is not None, \
        "BUG: mkdir Stuff in the root of a DAV-only account succeeded; the folder and the " \
        "message in it wait forever (folder state, message state: %s). fs/write.c " \
        "write_mkdir makes a mail folder at the root without checking that the account " \
        "has imap" % (pending,)


def test_rmdir_empty_locally_not_on_server(dav, mount, run_mailfs):
    """rmdir deletes a collection only when it is empty on the server too:
    an item that arrived meanwhile keeps it, and it comes back."""
    team = dav.calendar("team", "Team")
    m = dav.mount(mount, run_mailfs)
    assert files(m / "Calendar/Team") == []
    rc, out, err = run_mailfs("offline", m.path)
    assert rc == 0, err
    os.rmdir(m / "Calendar/Team")
    dav.put(team + "late.ics", event("late", "Arrived late"))
    rc, out, err = run_mailfs("online", m.path)
    assert rc == 0, err
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert dav.exists(team), "the server's collection holding an item was deleted:\n" + \
        log_tail(m)
    assert server_has(dav, team, "late")
    wait_for(m, lambda: files(m / "Calendar/Team") == ["2026-01-05 10.00 Arrived late.ics"],
             "Calendar/Team back with the server's item")


# --- 5. files that are not valid ----------------------------------------------------------------

def test_invalid_files_kept_then_fixed(dav, mount, run_mailfs):
    dav.put(dav.cal + "ev.ics", event("ev", "Review", extra="LOCATION:Room 1"))
    m = dav.mount(mount, run_mailfs)
    ev = m / "Calendar/2026-01-05 10.00 Review.ics"
    server_ev = dav.get(dav.cal + "ev.ics")
    bad_ics = b"this is not a calendar\n"
    bad_vcf = b"BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:x@example.com\r\n"   # truncated
    bad_ics_file = m / "Calendar/bad.ics"
    write(bad_ics_file, bad_ics)                       # the close succeeds
    write(m / "Contacts/bad.vcf", bad_vcf)
    write(ev, b"BEGIN:VCALENDAR\r\nBROKEN\r\n")        # an edit that breaks a good item
    for p, want in ((bad_ics_file, "error: not valid iCalendar: "),
                    (m / "Contacts/bad.vcf", "error: not a valid vCard: "),
                    (ev, "error: not valid iCalendar: ")):
        wait_state(m, p, lambda s, w=want: s.startswith(w), timeout=PUSH)
    sync(run_mailfs, m)
    # kept locally (bare LF may become CRLF, as iCalendar and vCard want), nothing sent
    assert read(bad_ics_file) in (bad_ics, crlf(bad_ics))
    assert read(m / "Contacts/bad.vcf") == bad_vcf
    assert read(ev) == b"BEGIN:VCALENDAR\r\nBROKEN\r\n"
    assert list(dav.by_uid(dav.cal)) == ["ev"] and dav.get(dav.cal + "ev.ics") == server_ev
    assert dav.items(dav.book) == {}
    for p in (bad_ics_file, m / "Contacts/bad.vcf", ev):
        assert state(p).startswith("error: "), (p, state(p))

    # fixing the files sends them
    write(bad_ics_file, event("fixed-1", "Fixed now", "20260202T100000Z"))
    write(m / "Contacts/bad.vcf", vcard("fixed-2", "Fixed Person"))
    write(ev, event("ev", "Review", extra="LOCATION:Room 7"))
    for p in (bad_ics_file, m / "Contacts/bad.vcf", ev):
        wait_synced(m, p)
    cal = dav.by_uid(dav.cal)
    assert set(cal) == {"ev", "fixed-1"}
    assert prop(cal["ev"][1], "LOCATION") == ["Room 7"]
    assert set(dav.by_uid(dav.book)) == {"fixed-2"}
    assert read(bad_ics_file) == cal["fixed-1"][1]
    assert read(ev) == cal["ev"][1]


def test_kind_mismatch_in_folder(dav, mount, run_mailfs):
    """A task written under Calendar/, an event under Tasks/: either refused
    with a state saying why (the file kept), or sent and then shown once,
    where its kind belongs -- never lost, never shown twice."""
    m = dav.mount(mount, run_mailfs)
    write(m / "Calendar/a task.ics", todo("mis-1", "Task in Calendar"))
    write(m / "Tasks/an event.ics", event("mis-2", "Event in Tasks"))
    for rel, uid in (("Calendar/a task.ics", "mis-1"), ("Tasks/an event.ics", "mis-2")):
        p = m / rel
        wait_state(m, p, lambda s: s == "synced" or s.startswith("error: "))
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    seen = {}
    for top in ("Calendar", "Tasks", "Notes"):
        for n in files(m / top):
            seen.setdefault(prop(read(m / top / n), "UID")[0], []).append(
                (top + "/" + n, state(m / top / n)))
    for rel, uid in (("Calendar/a task.ics", "mis-1"), ("Tasks/an event.ics", "mis-2")):
        where = seen.get(uid, [])
        assert len(where) == 1, "%s: shown %d times: %s" % (uid, len(where), where)
        if where[0][1] == "synced":
            assert server_has(dav, dav.cal, uid)
        else:
            assert where[0][1].startswith("error: ") and not server_has(dav, dav.cal, uid)
