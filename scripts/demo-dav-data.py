#!/usr/bin/python3
"""Sample calendars, tasks, notes and contacts for the demo: a calendar with
events, tasks and notes (a weekly meeting with a moved instance, an all-day
event, non-ASCII titles), a second calendar "Team", an address book.
Usage: demo-dav-data.py SERVER_JSON (a Radicale from tests/servers/radicale.py)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "servers"))
from radicale import DavClient, make_vcard  # noqa: E402

info = json.load(open(sys.argv[1]))
dav = DavClient(info["host"], info["port"], "alice", info["users"]["alice"])
dav.mkcalendar("/alice/personal/", displayname="Personal")
dav.mkcalendar("/alice/team/", displayname="Team", comps=("VEVENT",))
dav.mkaddressbook("/alice/contacts/", displayname="Contacts")


def cal(body):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailfs demo//EN\r\n" + body +
            "END:VCALENDAR\r\n")


def comp(kind, uid, lines):
    return "BEGIN:%s\r\nUID:%s\r\nDTSTAMP:20261120T080000Z\r\n%sEND:%s\r\n" % (
        kind, uid, "".join(l + "\r\n" for l in lines), kind)


items = {
    "/alice/personal/dentist.ics": cal(comp("VEVENT", "dentist", [
        "DTSTART:20261203T083000Z", "DTEND:20261203T090000Z", "SUMMARY:Dentist"])),
    "/alice/personal/holiday.ics": cal(comp("VEVENT", "holiday", [
        "DTSTART;VALUE=DATE:20261224", "DTEND;VALUE=DATE:20261227",
        "SUMMARY:Weihnachtsferien 🎄"])),
    "/alice/team/weekly.ics": cal(
        comp("VEVENT", "weekly", ["DTSTART:20261130T090000Z", "DTEND:20261130T093000Z",
                                  "RRULE:FREQ=WEEKLY;COUNT=10", "SUMMARY:Weekly sync"]) +
        comp("VEVENT", "weekly", ["RECURRENCE-ID:20261207T090000Z",
                                  "DTSTART:20261208T100000Z", "DTEND:20261208T103000Z",
                                  "SUMMARY:Weekly sync (moved to Tuesday)"])),
    "/alice/team/réunion.ics": cal(comp("VEVENT", "reunion", [
        "DTSTART:20261202T130000Z", "DTEND:20261202T140000Z",
        "SUMMARY:Réunion d'équipe"])),
    "/alice/personal/taxes.ics": cal(comp("VTODO", "taxes", [
        "DUE;VALUE=DATE:20261215", "SUMMARY:File the taxes"])),
    "/alice/personal/bike.ics": cal(comp("VTODO", "bike", ["SUMMARY:Fix the bike"])),
    "/alice/personal/ideas.ics": cal(comp("VJOURNAL", "ideas", [
        "SUMMARY:Ideas", "DESCRIPTION:A filesystem for mail\\nOffline first\\n",
        "CATEGORIES:demo"])),
}
for path, body in items.items():
    dav.put(path, body)
contacts = [("ada", "Ada Lovelace"), ("grace", "Grace Hopper"), ("zoe", "Zoë Ångström")]
for uid, name in contacts:
    dav.put("/alice/contacts/%s.vcf" % uid, make_vcard(uid, name), ctype="text/vcard")
print("loaded %d calendar items and %d contacts" % (len(items), len(contacts)))
